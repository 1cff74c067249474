"""The interop TestService as a Python grpcio server, for a Sgrid proxy to drive.

Usage: interop_server.py STUBS_DIR PORT
Prints "listening <port>" once serving; stops on SIGTERM or when stdin closes.
Behaviour after grpc's interop-test-descriptions.md: payloads of zeros of the
asked sizes, x-grpc-test-echo-initial echoed as a header and
x-grpc-test-echo-trailing-bin as a trailer, response_status returned as the
call's status, response_compressed answered with a gzip-compressed response.
"""
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from src.proto.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

INITIAL_KEY = "x-grpc-test-echo-initial"
TRAILING_KEY = "x-grpc-test-echo-trailing-bin"


def echo_metadata(context):
    md = dict(context.invocation_metadata())
    if INITIAL_KEY in md:
        context.send_initial_metadata(((INITIAL_KEY, md[INITIAL_KEY]),))
    if TRAILING_KEY in md:
        context.set_trailing_metadata(((TRAILING_KEY, md[TRAILING_KEY]),))


def maybe_fail(status, context):
    if status is not None and status.code != 0:
        code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
        context.abort(code, status.message)


def body(size):
    return messages_pb2.Payload(body=b"\x00" * size)


class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        echo_metadata(context)
        if request.HasField("response_status"):
            maybe_fail(request.response_status, context)
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        return messages_pb2.SimpleResponse(payload=body(request.response_size))

    def StreamingOutputCall(self, request, context):
        for p in request.response_parameters:
            if p.interval_us:
                time.sleep(p.interval_us / 1e6)
            yield messages_pb2.StreamingOutputCallResponse(payload=body(p.size))
        if request.HasField("response_status"):
            maybe_fail(request.response_status, context)

    def StreamingInputCall(self, request_iterator, context):
        total = sum(len(r.payload.body) for r in request_iterator)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        for request in request_iterator:
            if request.HasField("response_status"):
                maybe_fail(request.response_status, context)
            for p in request.response_parameters:
                if p.interval_us:
                    time.sleep(p.interval_us / 1e6)
                yield messages_pb2.StreamingOutputCallResponse(payload=body(p.size))

    def HalfDuplexCall(self, request_iterator, context):
        requests = list(request_iterator)
        for request in requests:
            for p in request.response_parameters:
                yield messages_pb2.StreamingOutputCallResponse(payload=body(p.size))


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    port = server.add_insecure_port("127.0.0.1:%s" % sys.argv[2])
    server.start()
    print("listening %d" % port, flush=True)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    try:
        stop.wait()
    finally:
        server.stop(0)


if __name__ == "__main__":
    main()
