"""The local runtime: an embedded AWS emulator, the stack provisioned from infra/, and local
processes standing in for Batch and Lambda. Only the transport is local."""
