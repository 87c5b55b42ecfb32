"""Checking a fetched model against an OpenSSF model-signing signature (the `model-signing` library).

The signature is a Sigstore bundle over a manifest of every file's digest, as `model_signing sign`
writes it. Two ways to trust its signer work offline, and both are offered:

- a public key (PEM): an elliptic-curve key on P-256, P-384 or P-521, which is what the library
  signs and verifies with (model-signing 1.1.1 has no RSA support: an RSA key is refused by name);
- a certificate chain (PEM): the signing certificate in the bundle must chain up to it.

Sigstore keyless signatures are not offered: checking one needs Sigstore's trust root and
transparency log, which the initializer cannot reach offline.

After a signature verifies, files that no signature covers (those the signer told the library to
leave out, such as `.git*` paths) are removed, so the server reads signed bytes only.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from modeldeploy.api.models import DEFAULT_SIGNATURE
from modeldeploy.storage.digest import model_files
from modeldeploy.storage.errors import FetchError
from modeldeploy.storage.termination import SIGNATURE_INVALID, SIGNATURE_MISSING

EC_CURVES = ("secp256r1", "secp384r1", "secp521r1")


class SignatureInvalid(FetchError):
    reason = SIGNATURE_INVALID


class SignatureMissing(FetchError):
    reason = SIGNATURE_MISSING


@dataclass(frozen=True)
class Trust:
    """Whom to trust: exactly one of a public key or a certificate chain, PEM files."""

    public_key: Path | None = None
    certificate_chain: Path | None = None

    def __post_init__(self) -> None:
        if (self.public_key is None) == (self.certificate_chain is None):
            raise FetchError("give exactly one of --verify-key or --verify-certificate-chain")


@dataclass(frozen=True)
class Verification:
    """What to check a fetched model against. `signature` is a path inside the model, or a URI that
    is fetched beside it (see fetch.py)."""

    trust: Trust
    signature: str = DEFAULT_SIGNATURE

    @property
    def signature_is_remote(self) -> bool:
        return "://" in self.signature


def signature_inside(model: Path, relative: str) -> Path:
    """The signature's path inside the fetched model, refusing one that would lie outside it."""
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise FetchError(f"--signature {relative!r} must be a path inside the model or a URI")
    return model / path


def verify_model(model: Path, signature: Path, trust: Trust) -> str:
    """Check the model directory `model` against `signature`; the signer (key fingerprint or
    certificate subject). Files the signature does not cover are removed afterwards."""
    import model_signing

    if not signature.is_file():
        raise SignatureMissing(f"no signature at {signature.name}: sign the model with model_signing")
    config = model_signing.verifying.Config()
    try:
        if trust.public_key is not None:
            _require_supported_key(trust.public_key)
            config.use_elliptic_key_verifier(public_key=trust.public_key)
        else:
            assert trust.certificate_chain is not None
            config.use_certificate_verifier(certificate_chain=[trust.certificate_chain])
        config.verify(model, signature)
        # Read again only to learn which files it covers; the library verified it just above.
        signed = {
            descriptor.identifier
            for descriptor in config._verifier.verify(_read(signature)).resource_descriptors()
        }
    except FetchError:
        raise
    except InvalidSignature:
        raise SignatureInvalid(f"{signature.name} was not signed by the trusted key") from None
    except Exception as error:
        raise SignatureInvalid(_describe(error, signature)) from error
    if trust.public_key is not None:
        signer = f"key {public_key_fingerprint(trust.public_key)}"
    else:
        signer = f"certificate {_signing_certificate(signature).subject.rfc4514_string()}"
    _remove_unsigned(model, signed)
    return signer


def public_key_fingerprint(path: Path) -> str:
    """`sha256:<hex>` of the key's DER SubjectPublicKeyInfo, what
    `openssl pkey -pubin -in KEY.pem -outform DER | sha256sum` prints."""
    key = serialization.load_pem_public_key(path.read_bytes())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"sha256:{hashlib.sha256(der).hexdigest()}"


def _require_supported_key(path: Path) -> None:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise FetchError(f"--verify-key {path} is not a PEM public key: {error}") from error
    if isinstance(key, rsa.RSAPublicKey):
        raise SignatureInvalid(
            "the verification key is an RSA key; model-signing signs and verifies with elliptic-curve keys "
            f"({', '.join(EC_CURVES)}) only"
        )
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in EC_CURVES:
        raise SignatureInvalid(
            f"the verification key must be an elliptic-curve key on {', '.join(EC_CURVES)}"
        )


def _read(signature: Path):  # type: ignore[no-untyped-def]
    from model_signing._signing import sign_sigstore_pb

    return sign_sigstore_pb.Signature.read(signature)


def _signing_certificate(signature: Path) -> x509.Certificate:
    chain = _read(signature).bundle.verification_material.x509_certificate_chain
    return x509.load_der_x509_certificate(chain.certificates[0].raw_bytes)


def _describe(error: Exception, signature: Path) -> str:
    """One line naming what differs, from the library's message."""
    message = " ".join(str(error).split()) or type(error).__name__
    if message.startswith("Signature mismatch: "):
        return "the model differs from its signature: " + "; ".join(_differences(message))
    if "Key mismatch" in message:
        return f"{signature.name} was signed by another key than the trusted one"
    if isinstance(error, ValueError) and "JSON" in type(error).__name__ + message:
        return f"{signature.name} is not a model-signing signature: {message}"
    return message


def _differences(message: str) -> list[str]:
    """The library lists differences as text with both digests' reprs; keep the file names only."""
    changed = re.findall(r"Hash mismatch for '(.+?)': Expected", message)
    differences = [f"{', '.join(changed)} changed"] if changed else []
    for kind, label in (("Extra files", "not signed"), ("Missing files", "missing")):
        if found := re.search(rf"{kind} [^:]*: ([^\"]+)", message):
            differences.append(f"{found[1]} {label}")
    return differences or [message]


def _remove_unsigned(model: Path, signed: set[str]) -> None:
    for relative in model_files(model):
        if relative not in signed:
            (model / relative).unlink()
    for directory in sorted((p for p in model.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            shutil.rmtree(directory)
