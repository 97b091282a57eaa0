import subprocess
import sys

from asif.store.ids import anchor_id


def test_anchor_id_is_a_stable_hash_of_the_pair():
    a = anchor_id("http://x/1.jpg", "a cat")
    assert a == anchor_id("http://x/1.jpg", "a cat") and len(a) == 32 and int(a, 16) >= 0
    assert a != anchor_id("http://x/1.jpg", "a dog") != anchor_id("http://x/2.jpg", "a cat")
    assert anchor_id("a", "bc") != anchor_id("ab", "c")  # the separator keeps fields apart


def test_ids_do_not_import_lancedb():
    code = "import sys, asif.store.ids; assert 'lancedb' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
