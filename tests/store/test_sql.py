from asif.store.sql import quote


def test_quote_doubles_single_quotes():
    assert quote("plain") == "'plain'"
    assert quote("it's") == "'it''s'"
    assert quote("") == "''"
