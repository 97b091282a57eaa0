from asif.evaluation.imagenet import imagenet_class_names


def test_thousand_distinct_names_by_wnid_and_index():
    names = imagenet_class_names()
    by_index = [names[str(i)] for i in range(1000)]
    assert len(set(by_index)) == 1000 and all(by_index)
    assert names["n01440764"] == names["0"] == "tench"
    assert names["n02012849"] == names["134"] == "crane bird"
    assert names["n03126707"] == names["517"] == "construction crane"
