#!/usr/bin/env python3
"""Quantizes a GGUF with llama.cpp's own quantizer (through llama-cpp-python), so a random
Q4_K_M file has exactly the tensor-type mix of a published Q4_K_M file.

  quantize_gguf.py IN.gguf OUT.gguf Q4_K_M
"""

import ctypes
import sys

import llama_cpp

FTYPES = {"Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M, "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0}


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in FTYPES:
        sys.exit(__doc__)
    src, dst, kind = sys.argv[1:]
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[kind]
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"llama_model_quantize failed with {rc}")


if __name__ == "__main__":
    main()
