"""grpcio-reflection's own client (reflection v1alpha, what grpcurl speaks
too) against the hub over mutual TLS: lists the services and reads the
methods of `isac.v1.Publisher` from the served descriptors.

Usage: reflection_client.py HOST:PORT CA_PEM CLIENT_CERT_PEM CLIENT_KEY_PEM
Prints one JSON object: {"services": [...], "publisher_methods": [...]}.
Installed by scripts/install-deps (grpcio, grpcio-reflection).
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main():
    target, ca, cert, key = sys.argv[1:5]
    read = lambda p: open(p, "rb").read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )
    with grpc.secure_channel(target, credentials) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        database = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        publisher = pool.FindServiceByName("isac.v1.Publisher")
        methods = sorted(m.name for m in publisher.methods)
    print(json.dumps({"services": services, "publisher_methods": methods}))


if __name__ == "__main__":
    main()
