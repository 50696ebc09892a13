"""Checks a KMIP role's policy through PyKMIP's ProxyKmipClient.

Usage: pykmip-policy.py PORT CERT KEY CA. Creates an AES key, gets it and
tries to destroy it over KMIP 1.2, and prints one JSON object with each
step's result. A failed step is reported with its Result Status, Result
Reason and Result Message instead of raising, so the test can check them.
"""
import json
import sys

from kmip.core import enums
from kmip.pie import exceptions
from kmip.pie.client import ProxyKmipClient

port, cert, key, ca = sys.argv[1:5]
client = ProxyKmipClient(
    hostname="127.0.0.1",
    port=int(port),
    cert=cert,
    key=key,
    ca=ca,
    ssl_version="PROTOCOL_SSLv23",
    kmip_version=enums.KMIPVersion.KMIP_1_2,
    config_file="/dev/null",
)


def failure(error):
    return {"status": error.status.name, "reason": error.reason.name, "message": error.message}


results = {}


def attempt(step, action):
    """Runs one step and records its result, or its failure."""
    try:
        results[step] = action()
    except exceptions.KmipOperationFailure as error:
        results[step] = failure(error)
    return results[step]


with client:
    uid = attempt(
        "create", lambda: client.create(enums.CryptographicAlgorithm.AES, 256, name="policy-check")
    )
    if isinstance(uid, str):
        attempt("get_length", lambda: len(client.get(uid).value))
        attempt("destroy", lambda: client.destroy(uid) or "Success")

print(json.dumps(results))
