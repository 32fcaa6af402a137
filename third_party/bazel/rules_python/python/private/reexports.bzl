"""Native providers under names of their own (a file cannot re-export a global under the same name)."""

internal_PyInfo = PyInfo

internal_PyRuntimeInfo = PyRuntimeInfo
