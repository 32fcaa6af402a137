#!/bin/sh
echo "remote_coverage_tools is an offline stand-in: run 'bazel coverage' without --config=offline" >&2
exit 1
