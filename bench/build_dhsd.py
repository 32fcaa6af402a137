"""Times building DHSD (h32 by default) from a local copy into a temporary data_dir.

Prints one JSON line: {"dataset": "dhsd", "config": ..., "examples": N, "build_s": ...}.

  .venv/bin/python bench/build_dhsd.py [--config=h32] [--manual_dir=../shared/data/dhsd]
"""

import argparse
import contextlib
import importlib.util
import json
import pathlib
import shutil
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent


def load_builder():
  path = REPO / "datasets" / "dhsd" / "dhsd_dataset_builder.py"
  spec = importlib.util.spec_from_file_location("scrabblegan_bench_dhsd_dataset_builder", path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module
  spec.loader.exec_module(module)
  return module.Builder


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--config", default="h32")
  parser.add_argument("--manual_dir", default=str(REPO.parent / "shared" / "data" / "dhsd"))
  args = parser.parse_args()

  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder_cls = load_builder()
  data_dir = tempfile.mkdtemp(prefix="bench_dhsd_")
  try:
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the JSON line only
      builder = builder_cls(config=args.config, data_dir=data_dir)
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(manual_dir=args.manual_dir))
    build_s = time.perf_counter() - start
    examples = sum(s.num_examples for s in builder.info.splits.values())
  finally:
    shutil.rmtree(data_dir, ignore_errors=True)
  print(json.dumps({"dataset": "dhsd", "config": args.config, "examples": examples,
                    "build_s": round(build_s, 3)}), flush=True)


if __name__ == "__main__":
  main()
