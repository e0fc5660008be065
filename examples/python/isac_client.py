#!/usr/bin/env python3
"""A member client for the ISAC hub in Python, written from the proto alone.

It publishes statement format v2, subscribes, and verifies every item, with
no code of ours: gRPC through grpcio with stubs generated from
proto/isac/v1/isac.proto when it starts (grpcio-tools), canonical bytes
through the `rfc8785` package (RFC 8785, JCS), DSSE and Ed25519 through
`cryptography`. It uses an enrolled agent's state directory for its
credentials: identity.json, ca.crt, tls.crt, tls.key (mTLS), signing.key
(the member's Ed25519 key, PKCS#8 PEM) and hub-directory.pub (the hub's
directory key pinned at enrollment, SPKI DER).

    isac_client.py publish   --state-dir DIR STATEMENT.json
    isac_client.py subscribe --state-dir DIR [--out FILE]
    isac_client.py verify    --state-dir DIR ENVELOPE.dsse.json

`publish` reads a JSON statement in any key order and escape style, fills
`id` (a new UUID v4), `revision` (1), `source` (the member), `created`
(now), `audience` ([]) and `anonymous` (false) when they are missing,
canonicalises it with JCS, signs PAE(payloadType, payload) and publishes.
It prints one JSON object: id, revision, duplicate, payload (the signed
bytes as text) and payload_sha256.

`subscribe` fetches the signed key directory, checks its signature with the
pinned key, then reads every item the member may see (backlog, no follow)
and verifies each: payload type, the one signature, the key's owner and
validity, and for v2 that the payload is its own JCS form. It prints one
JSON line per verified item and exits 1 if any item fails.

`verify` checks one DSSE JSON envelope (standard form: payloadType, base64
payload, signatures with keyid and base64 sig) against the directory the
same way; exit 0 when it verifies, 1 when it does not.

Requirements (scripts/install-deps pins them): grpcio, grpcio-tools,
rfc8785, cryptography.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import sys
import tempfile
import uuid

import grpc
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.exceptions import InvalidSignature

PAYLOAD_TYPE_V1 = "application/vnd.isac.statement.v1+json"
PAYLOAD_TYPE_V2 = "application/vnd.isac.statement.v2+json"
PAYLOAD_TYPE_DIRECTORY = "application/vnd.isac.key-directory.v1+json"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))


# --- stubs, generated from the proto at start --------------------------------


def load_stubs(proto_dir):
    """Runs protoc (grpcio-tools) on isac/v1/isac.proto into a temporary
    directory and imports the generated modules."""
    from grpc_tools import protoc
    import importlib.resources

    out = tempfile.mkdtemp(prefix="isac-stubs-")
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.join(proto_dir, "isac", "v1", "isac.proto"),
        ]
    )
    if rc != 0:
        sys.exit(f"protoc failed on {proto_dir}/isac/v1/isac.proto (exit {rc})")
    sys.path.insert(0, out)
    from isac.v1 import isac_pb2, isac_pb2_grpc  # noqa: E402 (generated)

    return isac_pb2, isac_pb2_grpc


# --- DSSE and keys -------------------------------------------------------------


def pae(payload_type, payload):
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def key_id(public_key):
    """Lowercase hex SHA-256 of the key's SubjectPublicKeyInfo (DER)."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


class State:
    """An enrolled agent's state directory."""

    def __init__(self, root):
        self.root = root
        with open(self.path("identity.json")) as f:
            self.identity = json.load(f)

    def path(self, name):
        return os.path.join(self.root, name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def signing_key(self):
        key = serialization.load_pem_private_key(self.read("signing.key"), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            sys.exit("signing.key is not an Ed25519 key")
        return key

    def hub_directory_key(self):
        key = serialization.load_der_public_key(self.read("hub-directory.pub"))
        if key_id(key) != self.identity["hub_directory_key_id"]:
            sys.exit("hub-directory.pub does not match identity.json")
        return key

    def channel(self):
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.read("ca.crt"),
            private_key=self.read("tls.key"),
            certificate_chain=self.read("tls.crt"),
        )
        url = self.identity["hub_url"]
        target = url.split("://", 1)[-1].rstrip("/")
        return grpc.secure_channel(target, creds)


# --- the key directory ------------------------------------------------------


class Directory:
    """The hub's signed key directory, verified with the pinned key."""

    def __init__(self, envelope, hub_key):
        if envelope.payload_type != PAYLOAD_TYPE_DIRECTORY:
            raise ValueError(f"directory payload type {envelope.payload_type!r}")
        if len(envelope.signatures) != 1:
            raise ValueError("directory must carry exactly one signature")
        sig = envelope.signatures[0]
        if sig.keyid != key_id(hub_key):
            raise ValueError("directory is not signed by the pinned hub key")
        hub_key.verify(sig.sig, pae(envelope.payload_type, envelope.payload))
        doc = json.loads(envelope.payload)
        self.version = doc["version"]
        self.keys = {}
        for k in doc["keys"]:
            public = serialization.load_der_public_key(base64.b64decode(k["public_key"]))
            if key_id(public) != k["key_id"]:
                raise ValueError(f"directory entry {k['key_id']} does not match its key")
            self.keys[k["key_id"]] = (public, k)


def fetch_directory(stubs, channel, state):
    pb, rpc = stubs
    reply = rpc.KeyDirectoryStub(channel).ListKeys(pb.ListKeysRequest(), timeout=30)
    return Directory(reply.signed_directory, state.hub_directory_key())


def parse_time(s):
    if not s.endswith("Z"):
        raise ValueError(f"timestamp {s!r} is not UTC")
    return datetime.datetime.fromisoformat(s[:-1] + "+00:00")


def verify_envelope(payload_type, payload, signatures, directory):
    """Verifies one statement envelope; returns the statement or raises."""
    if payload_type not in (PAYLOAD_TYPE_V1, PAYLOAD_TYPE_V2):
        raise ValueError(f"unsupported payload type {payload_type!r}")
    if len(signatures) != 1:
        raise ValueError(f"expected one signature, found {len(signatures)}")
    keyid, sig = signatures[0]
    if keyid not in directory.keys:
        raise ValueError(f"key {keyid} is not in the key directory")
    public, entry = directory.keys[keyid]
    try:
        public.verify(sig, pae(payload_type, payload))
    except InvalidSignature:
        raise ValueError(f"signature does not verify with key {keyid}") from None
    statement = json.loads(payload)
    if payload_type == PAYLOAD_TYPE_V2 and rfc8785.dumps(statement) != payload:
        raise ValueError("v2 payload is not its own RFC 8785 (JCS) form")
    if statement["source"] != entry["org_id"]:
        raise ValueError(
            f"statement claims {statement['source']!r}, key belongs to {entry['org_id']!r}"
        )
    created = parse_time(statement["created"])
    if created < parse_time(entry["valid_from"]) - datetime.timedelta(seconds=300):
        raise ValueError("signed before the key became valid")
    for field in ("revoked_at", "retired_at"):
        if entry.get(field) and created >= parse_time(entry[field]):
            raise ValueError(f"signed after the key was {field[:-3]}")
    return statement


# --- commands ------------------------------------------------------------------


def cmd_publish(args, stubs):
    pb, rpc = stubs
    state = State(args.state_dir)
    with open(args.statement, "rb") as f:
        statement = json.loads(f.read())
    statement.setdefault("id", str(uuid.uuid4()))
    statement.setdefault("revision", 1)
    statement.setdefault("source", state.identity["org_id"])
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    statement.setdefault("created", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    statement.setdefault("audience", [])
    statement.setdefault("anonymous", False)
    payload = rfc8785.dumps(statement)
    key = state.signing_key()
    envelope = pb.Envelope(
        payload_type=PAYLOAD_TYPE_V2,
        payload=payload,
        signatures=[
            pb.Signature(
                keyid=key_id(key.public_key()), sig=key.sign(pae(PAYLOAD_TYPE_V2, payload))
            )
        ],
    )
    with state.channel() as channel:
        try:
            reply = rpc.PublisherStub(channel).Publish(
                pb.PublishRequest(envelope=envelope), timeout=30
            )
        except grpc.RpcError as e:
            print(
                json.dumps({"error": e.code().name, "message": e.details()}), flush=True
            )
            return 2
    print(
        json.dumps(
            {
                "id": reply.id,
                "revision": reply.revision,
                "duplicate": reply.duplicate,
                "payload": payload.decode(),
                "payload_sha256": hashlib.sha256(payload).hexdigest(),
            }
        ),
        flush=True,
    )
    return 0


def cmd_subscribe(args, stubs):
    pb, rpc = stubs
    state = State(args.state_dir)
    out = open(args.out, "w") if args.out else sys.stdout
    failed = 0
    with state.channel() as channel:
        directory = fetch_directory(stubs, channel, state)
        stream = rpc.SubscriberStub(channel).Subscribe(
            pb.SubscribeRequest(follow=False), timeout=60
        )
        for event in stream:
            which = event.WhichOneof("event")
            if which == "directory_changed":
                directory = fetch_directory(stubs, channel, state)
                continue
            if which != "item":
                continue
            env = event.item.envelope
            if event.item.directory_version > directory.version:
                directory = fetch_directory(stubs, channel, state)
            try:
                statement = verify_envelope(
                    env.payload_type,
                    env.payload,
                    [(s.keyid, s.sig) for s in env.signatures],
                    directory,
                )
            except (ValueError, KeyError) as e:
                failed += 1
                print(json.dumps({"refused": str(e)}), file=out, flush=True)
                continue
            print(
                json.dumps(
                    {
                        "id": statement["id"],
                        "revision": statement["revision"],
                        "source": statement["source"],
                        "kind": statement["body"].get("observable", {}).get(
                            "kind", statement["body"]["type"]
                        ),
                        "payload_type": env.payload_type,
                        "verified": True,
                    }
                ),
                file=out,
                flush=True,
            )
    return 1 if failed else 0


def cmd_verify(args, stubs):
    state = State(args.state_dir)
    with open(args.envelope) as f:
        doc = json.load(f)
    with state.channel() as channel:
        directory = fetch_directory(stubs, channel, state)
    try:
        statement = verify_envelope(
            doc["payloadType"],
            base64.b64decode(doc["payload"], validate=True),
            [(s["keyid"], base64.b64decode(s["sig"], validate=True)) for s in doc["signatures"]],
            directory,
        )
    except (ValueError, KeyError) as e:
        print(json.dumps({"verified": False, "reason": str(e)}), flush=True)
        return 1
    print(json.dumps({"verified": True, "id": statement["id"]}), flush=True)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--proto-dir", default=DEFAULT_PROTO_DIR)
    sub = p.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="sign a JSON statement as v2 and publish it")
    pub.add_argument("--state-dir", required=True)
    pub.add_argument("statement")
    s = sub.add_parser("subscribe", help="read and verify every item the member may see")
    s.add_argument("--state-dir", required=True)
    s.add_argument("--out")
    v = sub.add_parser("verify", help="verify one DSSE JSON envelope")
    v.add_argument("--state-dir", required=True)
    v.add_argument("envelope")
    args = p.parse_args(argv)
    stubs = load_stubs(args.proto_dir)
    return {"publish": cmd_publish, "subscribe": cmd_subscribe, "verify": cmd_verify}[
        args.command
    ](args, stubs)


if __name__ == "__main__":
    sys.exit(main())
