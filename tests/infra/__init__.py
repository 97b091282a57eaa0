"""Tests of the infrastructure configs: a Ray head, S3-compatible storage."""
