"""The API emulator's check of a request's OAuth 1.0 signature, as the real API does it.

A request is accepted when its ``Authorization: OAuth …`` header names the expected
consumer key and token and carries a valid signature keyed by the consumer secret and the
token secret. Every method oauthlib verifies is accepted: PLAINTEXT (clever-tools 4.11
sends it, without ``oauth_signature_method``, which then defaults to PLAINTEXT, and
without nonce or timestamp) and HMAC-SHA1/256/512 over the exact method, URL, query and
oauth parameters. An ``oauth_body_hash`` (oauthlib sends one with a JSON body) must match
the body. oauthlib's ``SignatureOnlyEndpoint`` is not used because it requires a nonce
and a timestamp, which the real CLI does not send; the checks are oauthlib's own
``signature.verify_*`` functions on the parameters its ``collect_parameters`` reads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from oauthlib.common import Request
from oauthlib.oauth1.rfc5849 import signature

# clever-tools 4.11 src/config/config.js: the CLI's public OAuth consumer.
CLI_CONSUMER_KEY = "T5nFjKeHH4AIlEveuGhB5S3xg8T19e"
CLI_CONSUMER_SECRET = "MgVMqTr6fWlf2M0tkC2MXOnhfqBWDT"

_VERIFIERS = {
    "PLAINTEXT": signature.verify_plaintext,
    "HMAC-SHA1": signature.verify_hmac_sha1,
    "HMAC-SHA256": signature.verify_hmac_sha256,
    "HMAC-SHA512": signature.verify_hmac_sha512,
}


@dataclass(frozen=True)
class OAuthCheck:
    token: str
    secret: str
    consumer_key: str = CLI_CONSUMER_KEY
    consumer_secret: str = CLI_CONSUMER_SECRET

    def refusal(self, *, method: str, url: str, body: str, authorization: str) -> str | None:
        """None when the request is correctly signed, else why not (for the 401 body)."""
        if not authorization.startswith("OAuth "):
            return "no OAuth authorization header"
        query = url.split("?", 1)[1] if "?" in url else ""
        headers = {"Authorization": authorization}
        try:
            oauth = dict(signature.collect_parameters(headers=headers,
                                                      exclude_oauth_signature=False))
            # Only the query and the OAuth parameters are signed (a JSON body is not a
            # form: oauth_body_hash covers it instead).
            params = signature.collect_parameters(uri_query=query, headers=headers)
        except (ValueError, KeyError):
            return "malformed OAuth header"
        if oauth.get("oauth_consumer_key") != self.consumer_key:
            return "unknown consumer"
        if oauth.get("oauth_token") != self.token:
            return "unknown token"
        sent_hash = oauth.get("oauth_body_hash")
        if sent_hash is not None:
            digest = base64.b64encode(hashlib.sha1(body.encode()).digest()).decode()
            if not hmac.compare_digest(sent_hash, digest):
                return "oauth_body_hash does not match the body"
        method_name = oauth.get("oauth_signature_method", "PLAINTEXT")
        verify = _VERIFIERS.get(method_name)
        if verify is None:
            return f"unsupported signature method {method_name}"
        request = Request(url.split("?", 1)[0] + (f"?{query}" if query else ""),
                          http_method=method, body=body or None, headers=headers)
        request.signature = oauth.get("oauth_signature")
        request.params = params
        if not request.signature or not verify(request, self.consumer_secret, self.secret):
            return "invalid signature"
        return None
