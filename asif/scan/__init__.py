"""Exact and approximate top-k search of anchors, and the matrices that hold them."""
