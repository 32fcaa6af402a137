"""The TF Serving client (scrabblegan_tf/serving/client.py, export/client.py) against in-process stand-ins of tensorflow_model_server
that answer like it does, with the exported SavedModel loaded in this process: a REST server
(http.server on 127.0.0.1: ``/v1/models/<name>:predict``, columnar ``inputs``, ``*_bytes`` outputs
as ``{"b64": ...}``, errors as HTTP 400 + ``{"error": ...}``) and a gRPC PredictionService
(INVALID_ARGUMENT with the graph's message, ``output_filter``). And, when the binary is on PATH, the
real ``tensorflow_model_server`` end to end.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent import futures

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from export_helpers import make_workdir
from scrabblegan_tf.serving import client, export_lib

REPO = pathlib.Path(__file__).resolve().parents[1]

MODEL = "scrabblegan"
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An exported version (in-process export of an untrained smoke workdir) and its loaded model."""
    from scrabblegan_tf.inference.generation import load_generator

    root = tmp_path_factory.mktemp("client")
    gen, _, alphabet, _ = load_generator(make_workdir(root / "workdir"))
    export_dir = root / "models"
    version = export_lib.export_version(gen, alphabet, str(export_dir), version=1)
    export_lib.update_models_config(str(export_dir), MODEL)
    return {"export_dir": export_dir, "version": version,
            "loaded": tf.saved_model.load(version)}


def run_signature(loaded, signature, inputs):
    """Calls a signature with JSON-like / numpy inputs cast to its input dtypes."""
    fn = loaded.signatures[signature]
    specs = fn.structured_input_signature[1]
    missing = set(specs) - set(inputs)
    if missing or set(inputs) - set(specs):
        raise KeyError(f"signature {signature} takes inputs {sorted(specs)}, got {sorted(inputs)}")
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v, specs[k].dtype)
                                           for k, v in inputs.items()}).items()}


# -- fake REST server -----------------------------------------------------------------------------------
def _to_json(name, value):
    if name.endswith("_bytes"):  # TF Serving base64-encodes binary outputs named *_bytes
        if isinstance(value, np.ndarray) and value.ndim:
            return [_to_json(name, v) for v in value]
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    return np.asarray(value).tolist()


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


class FakeRest:
    def __init__(self, loaded):
        self.loaded = loaded
        self.bodies = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body):
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.bodies.append(body)
                m = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/\d+)?:predict", self.path)
                if not m or m.group(1) != MODEL:
                    return self._answer(404, {"error": f"Servable not found for request: {self.path}"})
                signature = body.get("signature_name", "serving_default")
                try:
                    inputs = {k: _from_json(v) for k, v in body["inputs"].items()}
                    out = run_signature(fake.loaded, signature, inputs)
                except (KeyError, tf.errors.InvalidArgumentError) as e:
                    return self._answer(400, {"error": getattr(e, "message", str(e))})
                self._answer(200, {"outputs": {k: _to_json(k, v) for k, v in out.items()}})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# -- fake gRPC server -----------------------------------------------------------------------------------
class FakeGrpc:
    def __init__(self, loaded):
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        self.requests = []
        fake = self

        class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                fake.requests.append(request)
                if request.model_spec.name != MODEL:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}")
                signature = request.model_spec.signature_name or "serving_default"
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                try:
                    out = run_signature(loaded, signature, inputs)
                except tf.errors.InvalidArgumentError as e:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
                response = predict_pb2.PredictResponse()
                response.model_spec.CopyFrom(request.model_spec)
                for k, v in out.items():
                    if not request.output_filter or k in request.output_filter:
                        response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
                return response

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def close(self):
        self.server.stop(0)


@pytest.fixture(scope="module")
def servers(model):
    rest, grpc_ = FakeRest(model["loaded"]), FakeGrpc(model["loaded"])
    yield {"rest": rest, "grpc": grpc_}
    rest.close()
    grpc_.close()


def png_shape(data: bytes):
    image = Image.open(io.BytesIO(data))
    assert image.mode == "L"
    return np.array(image).shape


# -- client functions -----------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_serving_default_pngs_equal_the_model_outputs(model, servers, protocol):
    server = servers[protocol]
    got = client.generate(["hello", "ab"], [7, 8], protocol=protocol, host="127.0.0.1",
                          port=server.port, model_name=MODEL)
    want = run_signature(model["loaded"], "serving_default",
                         {"words": ["hello", "ab"], "seeds": [7, 8]})
    assert [w for _, w in got] == [80, 32]
    assert [png for png, _ in got] == list(want["png_bytes"])  # byte for byte
    assert [png_shape(png) for png, _ in got] == [(32, 80), (32, 32)]
    if protocol == "rest":
        assert server.bodies[-1] == {"signature_name": "serving_default",
                                     "inputs": {"words": ["hello", "ab"], "seeds": [7, 8]}}
    else:
        request = server.requests[-1]
        assert request.model_spec.signature_name == "serving_default"
        assert list(request.output_filter) == ["png_bytes", "widths"]  # no float images on the wire
        assert tf.make_ndarray(request.inputs["seeds"]).dtype == np.int64


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_generate_line_and_generate_with_style(model, servers, protocol):
    port = servers[protocol].port
    lines = client.generate(["hello world", "ab"], [3, 4], protocol=protocol, host="127.0.0.1",
                            port=port, signature="generate_line")
    assert [w for _, w in lines] == [176, 32]
    assert [png_shape(png) for png, _ in lines] == [(32, 176), (32, 32)]
    z = np.random.default_rng(0).standard_normal((2, 32)).astype(np.float32)
    styled = client.generate(["hello", "ab"], z=z, protocol=protocol, host="127.0.0.1", port=port,
                             signature="generate_with_style")
    want = run_signature(model["loaded"], "generate_with_style", {"words": ["hello", "ab"], "z": z})
    assert [png for png, _ in styled] == list(want["png_bytes"])


@pytest.mark.parametrize("protocol,code", [("rest", "HTTP 400"), ("grpc", "INVALID_ARGUMENT")])
def test_bad_input_raises_serving_error_with_the_graph_message(servers, protocol, code):
    with pytest.raises(client.ServingError) as err:
        client.generate(["ok", "café"], [1, 2], protocol=protocol, host="127.0.0.1",
                        port=servers[protocol].port)
    assert err.value.code == code
    assert "characters outside the english alphabet: é (in: café)" in err.value.message


def test_client_argument_checks():
    with pytest.raises(ValueError, match="2 texts but 1 seeds"):
        client.generate(["a", "b"], [1])
    with pytest.raises(ValueError, match="needs style vectors"):
        client.generate(["a"], signature="generate_with_style")
    with pytest.raises(ValueError, match="Unknown signature"):
        client.generate(["a"], signature="nope")


def test_file_names_are_safe():
    assert client.file_name(3, "hello world") == "003_hello_world.png"
    assert client.file_name(0, "../é/*") == "000_text.png"
    assert client.file_name(12, "a" * 60) == "012_" + "a" * 40 + ".png"


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_cli_writes_the_pngs(servers, tmp_path, protocol):
    proc = subprocess.run(
        [sys.executable, str(REPO / "export" / "client.py"), '--texts=hello,"a, b"', "--seeds=7",
         f"--out_dir={tmp_path}", f"--protocol={protocol}", "--host=127.0.0.1",
         f"--port={servers[protocol].port}", f"--model_name={MODEL}"],
        capture_output=True, text=True, env=ENV, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == ["000_hello.png", "001_a_b.png"]
    assert png_shape((tmp_path / "000_hello.png").read_bytes()) == (32, 80)
    assert png_shape((tmp_path / "001_a_b.png").read_bytes()) == (32, 64)  # "a, b": 4 symbols
    assert proc.stdout.split() == [str(tmp_path / "000_hello.png"), "80",
                                   str(tmp_path / "001_a_b.png"), "64"]


def test_cli_reports_a_refused_request(servers, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "export" / "client.py"), "--texts=hello,~", f"--out_dir={tmp_path}",
         f"--port={servers['rest'].port}", "--host=127.0.0.1"],
        capture_output=True, text=True, env=ENV, timeout=60, cwd="/")
    assert proc.returncode == 1
    assert "error: the server refused the request: HTTP 400: " in proc.stderr
    assert "characters outside the english alphabet: ~ (in: ~)" in proc.stderr
    assert os.listdir(tmp_path) == []


# -- the real tensorflow_model_server -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(
    shutil.which("tensorflow_model_server") is None,
    reason="tensorflow_model_server binary not on PATH (not installable on this machine: no apt/pip "
           "package; install from the TF Serving apt repo or use the tensorflow/serving container)")
def test_tensorflow_model_server_end_to_end(model, tmp_path):
    """tensorflow_model_server with the export's models.config (warmup on); the client over REST and
    gRPC on 127.0.0.1 (TF Serving itself listens on all interfaces: it has no bind-address flag)."""
    grpc_port, rest_port = _free_port(), _free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        ["tensorflow_model_server", f"--port={grpc_port}", f"--rest_api_port={rest_port}",
         f"--model_config_file={model['export_dir'] / 'models.config'}", "--enable_model_warmup=true"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}",
                                            timeout=2) as resp:
                    status = json.loads(resp.read())["model_version_status"]
                if any(s["state"] == "AVAILABLE" for s in status):
                    break
            except OSError:
                pass
            assert time.time() < deadline, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        want = run_signature(model["loaded"], "serving_default",
                             {"words": ["hello", "ab"], "seeds": [7, 8]})
        for protocol, port, code in [("rest", rest_port, "HTTP 400"),
                                     ("grpc", grpc_port, "INVALID_ARGUMENT")]:
            got = client.generate(["hello", "ab"], [7, 8], protocol=protocol, host="127.0.0.1",
                                  port=port, model_name=MODEL)
            assert [w for _, w in got] == [80, 32]
            assert [png_shape(p) for p, _ in got] == [(32, 80), (32, 32)]
            np.testing.assert_array_equal(  # same pixels as the model run in this process
                [np.array(Image.open(io.BytesIO(p))) for p, _ in got][1],
                np.array(Image.open(io.BytesIO(want["png_bytes"][1]))))
            line = client.generate(["hello world"], [3], protocol=protocol, host="127.0.0.1",
                                   port=port, signature="generate_line")
            assert png_shape(line[0][0]) == (32, 176)
            with pytest.raises(client.ServingError) as err:
                client.generate(["café"], [1], protocol=protocol, host="127.0.0.1", port=port)
            assert err.value.code == code and "outside the english alphabet: é" in err.value.message
        proc = subprocess.run(
            [sys.executable, str(REPO / "export" / "client.py"), "--texts=hello,ab", "--seeds=7,8",
             f"--out_dir={tmp_path / 'out'}", "--host=127.0.0.1", f"--port={rest_port}"],
            capture_output=True, text=True, env=ENV, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert sorted(os.listdir(tmp_path / "out")) == ["000_hello.png", "001_ab.png"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
