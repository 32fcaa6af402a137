"""Offline stand-in for @rules_python//python:defs.bzl (the API of rules_python 0.4.0).

rules_python 0.4.0 itself only re-exports Bazel's native Python rules; so does this file.
"""

load("@bazel_tools//tools/python:srcs_version.bzl", _find_requirements = "find_requirements")
load("@bazel_tools//tools/python:toolchain.bzl", _py_runtime_pair = "py_runtime_pair")
load("//python/private:reexports.bzl", "internal_PyInfo", "internal_PyRuntimeInfo")

PyInfo = internal_PyInfo

PyRuntimeInfo = internal_PyRuntimeInfo

def py_library(**attrs):
    native.py_library(**attrs)

def py_binary(**attrs):
    native.py_binary(**attrs)

def py_test(**attrs):
    native.py_test(**attrs)

def py_runtime(**attrs):
    native.py_runtime(**attrs)

py_runtime_pair = _py_runtime_pair

find_requirements = _find_requirements
