"""Errors raised by the TF Serving clients, one per way a request can fail."""


class ServingError(RuntimeError):
    """The server answered with an error (HTTP error status or gRPC error code).

    Attributes:
        status: the HTTP status (int) or the gRPC status code name (str).
        body: the server's error text (TF Serving's ``{"error": ...}`` message).
        url: the URL or ``host:port`` that was called.
    """

    def __init__(self, message, status=None, body=None, url=None):
        super().__init__(message)
        self.status = status
        self.body = body
        self.url = url


class ServingConnectionError(ServingError, ConnectionError):
    """The server could not be reached (connection refused, unknown host, ...)."""


class ServingTimeoutError(ServingError, TimeoutError):
    """The server did not answer within the client's timeout."""
