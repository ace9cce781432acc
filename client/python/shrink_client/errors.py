"""The one exception the client raises."""

from __future__ import annotations

import grpc


class ShrinkError(Exception):
    """A failed call or local check, with the gRPC status code and its message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc(cls, what: str, error: grpc.RpcError) -> ShrinkError:
        """The error of the RPC `what` that failed with `error`."""
        # Every RpcError the stubs raise is also a grpc.Call, which carries code and details.
        return cls(error.code(), f"{what}: {error.details()}")
