"""Client of the exported generator served by ``tensorflow_model_server``: REST or gRPC; writes PNGs.

    scrabblegan-client --texts=hello,world --seeds=7,8 --out_dir=/tmp/out
    scrabblegan-client --texts="hello world" --signature=generate_line --protocol=grpc
    scrabblegan-client --texts='"a, b",c' ...     # --texts is comma-separated (CSV quoting)

(also ``python export/client.py ...`` or ``python -m scrabblegan_tf.serving.client ...``)

REST: POST ``http://<host>:<port>/v1/models/<model_name>:predict`` (port 8501) with
``{"signature_name": ..., "inputs": {"words": [...], "seeds": [...]}}``; TF Serving returns outputs
whose name ends in ``_bytes`` base64-encoded (``{"b64": ...}``). gRPC: ``PredictionService/Predict``
(port 8500, ``tensorflow-serving-api``), asking only for ``png_bytes`` and the widths. The REST
path needs only the standard library.

Signatures: ``serving_default`` (one request for all texts, one seed per text), ``generate_line``
(one request per text; spaces allowed), ``generate_with_style`` (style vectors from ``--z_npy``, a
float32 [len(texts), z_dim] array).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import urllib.error
import urllib.request

from scrabblegan_tf import cli
from scrabblegan_tf.cli import UserError

DEFAULT_PORTS = {"rest": 8501, "grpc": 8500}
SIGNATURE_OUTPUTS = {  # (PNG output, width output, batched)
    "serving_default": ("png_bytes", "widths", True),
    "generate_with_style": ("png_bytes", "widths", True),
    "generate_line": ("png_bytes", "width", False),
}


class ServingError(RuntimeError):
    """An error answer of the model server: ``code`` (gRPC status name, or ``HTTP <n>``) and the
    server's message (e.g. ``INVALID_ARGUMENT`` and "characters outside the english alphabet: ...")."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# -- REST --------------------------------------------------------------------------------------------
def rest_request(signature: str, inputs: dict) -> dict:
    """The JSON body of a columnar ("inputs") predict request."""
    return {"signature_name": signature, "inputs": inputs}


def decode_rest_value(value):
    """JSON output -> Python: ``{"b64": s}`` -> bytes, lists recursively."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [decode_rest_value(v) for v in value]
    return value


def rest_predict(host: str, port: int, model_name: str, signature: str, inputs: dict, *,
                 timeout: float = 60.0) -> dict:
    """Outputs of one REST predict call, ``*_bytes`` outputs decoded to bytes.

    Raises:
      ServingError: the server answered with an error (TF Serving: HTTP 400 + {"error": ...}).
    """
    url = f"http://{host}:{port}/v1/models/{model_name}:predict"
    body = json.dumps(rest_request(signature, inputs)).encode("utf-8")
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            message = json.loads(text).get("error", text)
        except ValueError:
            message = text
        raise ServingError(f"HTTP {e.code}", message) from None
    if "error" in answer:
        raise ServingError("error", answer["error"])
    outputs = answer["outputs"]
    if not isinstance(outputs, dict):  # a signature with a single output is returned bare
        outputs = {"output": outputs}
    return {k: decode_rest_value(v) for k, v in outputs.items()}


# -- gRPC --------------------------------------------------------------------------------------------
def grpc_predict(host: str, port: int, model_name: str, signature: str, inputs: dict, *,
                 output_filter=(), timeout: float = 60.0) -> dict:
    """Outputs (numpy arrays; strings as bytes) of one gRPC Predict call.

    ``inputs``: name -> (value, numpy dtype). Raises ServingError with the gRPC status name."""
    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for key, (value, dtype) in inputs.items():
        if dtype is object:
            value = np.array(_utf8(value), dtype=object)
        request.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(value, dtype=dtype)))
    request.output_filter.extend(output_filter)
    options = [("grpc.max_receive_message_length", 256 << 20),
               ("grpc.max_send_message_length", 256 << 20)]
    with grpc.insecure_channel(f"{host}:{port}", options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as e:
            raise ServingError(e.code().name, e.details()) from None
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def _utf8(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (list, tuple)):
        return [_utf8(v) for v in value]
    return value


# -- generation --------------------------------------------------------------------------------------
def generate(texts, seeds=None, *, z=None, protocol: str = "rest", host: str = "localhost",
             port: int | None = None, model_name: str = "scrabblegan",
             signature: str = "serving_default", timeout: float = 60.0) -> list[tuple[bytes, int]]:
    """(PNG bytes, width) per text from the model server.

    ``seeds``: one per text (``serving_default``, ``generate_line``); ``z``: [len(texts), z_dim]
    style vectors (``generate_with_style``)."""
    import numpy as np

    texts = list(texts)
    if signature not in SIGNATURE_OUTPUTS:
        raise ValueError(f"Unknown signature {signature!r}; choose one of {sorted(SIGNATURE_OUTPUTS)}")
    if protocol not in DEFAULT_PORTS:
        raise ValueError(f"Unknown protocol {protocol!r}; choose rest or grpc")
    port = port or DEFAULT_PORTS[protocol]
    png_key, width_key, batched = SIGNATURE_OUTPUTS[signature]
    if signature == "generate_with_style":
        if z is None:
            raise ValueError("generate_with_style needs style vectors z")
        z = np.asarray(z, np.float32)
        requests = [{"words": (texts, object), "z": (z, np.float32)}]
    else:
        seeds = list(range(len(texts))) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(seeds)} seeds")
        if batched:
            requests = [{"words": (texts, object), "seeds": (seeds, np.int64)}]
        else:
            requests = [{"text": (t, object), "seed": (s, np.int64)} for t, s in zip(texts, seeds)]
    results = []
    for inputs in requests:
        if protocol == "rest":
            json_inputs = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                           for k, (v, _) in inputs.items()}
            out = rest_predict(host, port, model_name, signature, json_inputs, timeout=timeout)
        else:
            out = grpc_predict(host, port, model_name, signature, inputs,
                               output_filter=(png_key, width_key), timeout=timeout)
        pngs, widths = out[png_key], out[width_key]
        if batched:
            results += [(bytes(p), int(w)) for p, w in zip(list(pngs), list(np.ravel(widths)))]
        else:
            results.append((bytes(np.ravel(pngs)[0]) if isinstance(pngs, np.ndarray) else pngs,
                            int(np.ravel(widths)[0])))
    return results


def file_name(index: int, text: str) -> str:
    """``003_hello_world.png``: index and a file-system-safe form of the text."""
    slug = re.sub(r"[^0-9A-Za-z_-]+", "_", text).strip("_")[:40] or "text"
    return f"{index:03d}_{slug}.png"


def write_pngs(results, texts, out_dir: str) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i, ((png, _), text) in enumerate(zip(results, texts)):
        path = os.path.join(out_dir, file_name(i, text))
        with open(path, "wb") as f:
            f.write(png)
        paths.append(path)
    return paths


# -- CLI ---------------------------------------------------------------------------------------------
def _define_flags():
    from absl import flags

    flags.DEFINE_list("texts", None, "Texts to render (comma-separated; CSV quoting for commas).",
                      required=True)
    flags.DEFINE_list("seeds", None, "Style seeds: one per text, or one for all (default 0, 1, ...).")
    flags.DEFINE_string("z_npy", None, "generate_with_style: .npy float32 [len(texts), z_dim].")
    flags.DEFINE_string("out_dir", "generated", "Folder for the PNGs.")
    flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "REST (JSON) or gRPC.")
    flags.DEFINE_string("host", "localhost", "Model server host.")
    flags.DEFINE_integer("port", None, "Model server port (default: 8501 for REST, 8500 for gRPC).")
    flags.DEFINE_string("model_name", "scrabblegan", "Model name on the server.")
    flags.DEFINE_enum("signature", "serving_default", sorted(SIGNATURE_OUTPUTS), "Signature.")
    flags.DEFINE_float("timeout", 60.0, "Seconds per request.")


def main(argv):
    import numpy as np
    from absl import flags

    f = flags.FLAGS
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {argv[1:]}")
    texts = list(f.texts)
    seeds = [int(s) for s in f.seeds] if f.seeds else None
    if seeds is not None and len(seeds) == 1:
        seeds = seeds * len(texts)
    z = np.load(f.z_npy) if f.z_npy else None
    try:
        results = generate(texts, seeds, z=z, protocol=f.protocol, host=f.host, port=f.port,
                           model_name=f.model_name, signature=f.signature, timeout=f.timeout)
    except ServingError as e:
        print(f"error: the server refused the request: {e}", file=sys.stderr)
        return 1
    for path, (_, width) in zip(write_pngs(results, texts, f.out_dir), results):
        print(f"{path}\t{width}")
    return 0


def run(argv=None):
    """The ``scrabblegan-client`` command (no TensorFlow import: REST needs only the standard library)."""
    cli.run(main, _define_flags, argv, tensorflow=False)


if __name__ == "__main__":
    run()
