"""Tests of replywatch."""
