"""Tests of the mail package: header decoding, the classifier, text previews, events."""
