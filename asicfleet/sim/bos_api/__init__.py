"""The public Braiins OS API (gRPC, port 50051) as protobuf message modules.

`proto/` holds the .proto files of github.com/braiins/bos-plus-api, release 1.11.0 (Braiins OS 26.05;
commit efa32c749a4a698fa87688e085ef69ff3b268601), unchanged. `bos/` holds the modules generated from
them by `scripts/gen_bos_api.py` (grpcio-tools); regenerate rather than edit them. Importing
`bos_api.bos.v1.<name>_pb2` registers its messages and services in protobuf's default descriptor pool.

License: the .proto files are Copyright (C) 2023 Braiins Systems s.r.o., licensed under the GNU General
Public License, version 3 or (at your option) any later version, as each file's header says; the
upstream repository ships no separate license file, so the GPL text is kept beside them in `LICENSE`.
The generated modules derive from them and are under the same license.
"""
