"""Credentials never reach a log line, a message or the marker file."""

import pytest

from modeldeploy.storage.redact import redact_uri, scrub


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://user:secret@models.example.com/m.onnx", "https://models.example.com/m.onnx"),
        ("https://token@models.example.com/m.onnx#part", "https://models.example.com/m.onnx"),
        (
            "https://bucket.s3.amazonaws.com/m.onnx?X-Amz-Credential=AKIA%2F1&X-Amz-Expires=600&X-Amz-Signature=ab12",
            "https://bucket.s3.amazonaws.com/m.onnx?X-Amz-Credential=REDACTED&X-Amz-Expires=600"
            "&X-Amz-Signature=REDACTED",
        ),
        (
            "https://acct.blob.core.windows.net/c/m.onnx?sv=2024&sig=abc",
            "https://acct.blob.core.windows.net/c/m.onnx?sv=2024&sig=REDACTED",
        ),
        ("hf://acme/sentiment@v1.2", "hf://acme/sentiment@v1.2"),
        ("s3:///model.onnx", "s3:///model.onnx"),
    ],
)
def test_uris_lose_user_info_and_signatures(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_scrub_redacts_urls_in_sentences_and_masks_secret_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG")
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijkl")
    text = (
        "GET https://u:p@host/m.onnx?sig=s3cr3t: refused (key wJalrXUtnFEMI/K7MDENG, token hf_abcdefghijkl)."
    )
    assert scrub(text) == "GET https://host/m.onnx?sig=REDACTED: refused (key REDACTED, token REDACTED)."
