"""Drives Keyward's KMIP listener with PyKMIP's ProxyKmipClient.

Usage: pykmip-client.py PORT CERT KEY CA VERSION, where VERSION is 1.2 or
2.0. Prints one JSON object with the result of each step. A failing step
raises, so the exit status is non-zero and the traceback is on stderr.
"""
import json
import sys

from kmip.core import enums
from kmip.core.factories import attributes as attribute_factories
from kmip.pie import objects
from kmip.pie.client import ProxyKmipClient

port, cert, key, ca, version = sys.argv[1:6]
kmip_version = {
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "2.0": enums.KMIPVersion.KMIP_2_0,
}[version]

client = ProxyKmipClient(
    hostname="127.0.0.1",
    port=int(port),
    cert=cert,
    key=key,
    ca=ca,
    ssl_version="PROTOCOL_SSLv23",
    kmip_version=kmip_version,
    config_file="/dev/null",
)
factory = attribute_factories.AttributeFactory()
results = {}
name = "pykmip-" + version

with client:
    uid = client.create(
        enums.CryptographicAlgorithm.AES,
        256,
        name=name,
        cryptographic_usage_mask=[
            enums.CryptographicUsageMask.ENCRYPT,
            enums.CryptographicUsageMask.DECRYPT,
        ],
    )
    results["create"] = uid

    secret = client.get(uid)
    results["get_length"] = len(secret.value)

    _, attributes = client.get_attributes(uid, ["State", "Cryptographic Algorithm"])
    results["get_attributes"] = sorted(
        str(attribute.attribute_name.value) for attribute in attributes
    )

    located = client.locate(attributes=[factory.create_attribute(enums.AttributeType.NAME, name)])
    results["locate"] = located

    client.activate(uid)
    results["activate"] = True

    parameters = {
        "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
        "block_cipher_mode": enums.BlockCipherMode.CBC,
        "padding_method": enums.PaddingMethod.PKCS5,
    }
    iv = bytes(16)
    ciphertext, _ = client.encrypt(
        b"attack at dawn", uid=uid, cryptographic_parameters=parameters, iv_counter_nonce=iv
    )
    results["encrypt_length"] = len(ciphertext)
    plaintext = client.decrypt(
        ciphertext, uid=uid, cryptographic_parameters=parameters, iv_counter_nonce=iv
    )
    results["decrypt"] = plaintext.decode()

    public_uid, private_uid = client.create_key_pair(
        enums.CryptographicAlgorithm.RSA,
        2048,
        public_usage_mask=[enums.CryptographicUsageMask.VERIFY],
        private_usage_mask=[enums.CryptographicUsageMask.SIGN],
    )
    client.activate(public_uid)
    client.activate(private_uid)
    signing = {
        "cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
        "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
        "padding_method": enums.PaddingMethod.PKCS1v15,
    }
    signature = client.sign(b"firmware image", uid=private_uid, cryptographic_parameters=signing)
    results["sign_length"] = len(signature)
    valid = client.signature_verify(
        b"firmware image", signature, uid=public_uid, cryptographic_parameters=signing
    )
    results["signature_verify"] = valid.name

    mac_key = objects.SymmetricKey(
        enums.CryptographicAlgorithm.HMAC_SHA256,
        256,
        bytes(range(32)),
        masks=[enums.CryptographicUsageMask.MAC_GENERATE],
        name=name + "-mac",
    )
    mac_uid = client.register(mac_key)
    client.activate(mac_uid)
    _, mac = client.mac(b"log line", uid=mac_uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
    results["mac"] = mac.hex()

    # Names are unique on a KMIP server, and PyKMIP gives every object the same default one.
    password = objects.SecretData(b"hunter2", enums.SecretDataType.PASSWORD, name=name + "-secret")
    secret_uid = client.register(password)
    results["register_secret"] = client.get(secret_uid).value.decode()

    client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
    results["revoke"] = True
    client.destroy(uid)
    results["destroy"] = True

print(json.dumps(results))
