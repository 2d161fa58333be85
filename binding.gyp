{
  "variables": {
    # The engine's backend (native/src/backend.h), one per build: node-gyp rebuild -- -Daha_backend=cpu
    "aha_backend%": "cpu",
    # The collectives of data-parallel training (native/src/mpi), built only where Open MPI is installed
    "aha_mpi%": "<!(node native/find-mpi.cjs)"
  },
  "targets": [
    {
      "target_name": "aha_engine",
      "sources": [
        "native/src/addon.cpp",
        "native/src/backendRegistry.cpp",
        "native/src/engineThread.cpp",
        "native/src/layout.cpp",
        "native/src/layerStrategy.cpp",
        "native/src/model.cpp",
        "native/src/sampler.cpp",
        "native/src/memory.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/src"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-ffp-contract=fast", "<!(node native/arch-flags.cjs)"],
      "ldflags": ["-fopenmp"],
      "conditions": [
        ["aha_backend=='cpu'", {
          "sources": [
            "native/src/cpu/cpuBackend.cpp",
            "native/src/cpu/ops.cpp",
            "native/src/cpu/attention.cpp",
            "native/src/cpu/blas.cpp",
            "native/src/cpu/smallGemm.cpp",
            "native/src/cpu/packedGemm.cpp",
            "native/src/cpu/probe.cpp",
            "native/src/cpu/halfWeights.cpp"
          ],
          "defines": ["AHA_BACKEND_CPU"],
          "libraries": ["<!(node native/find-openblas.cjs)"]
        }]
      ]
    },
    {
      # Without Open MPI this target builds nothing, and aha runs in one process as before.
      "target_name": "aha_mpi",
      "conditions": [
        ["aha_mpi=='yes'", {
          "sources": ["native/src/mpi/comm.cpp"],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!@(node native/find-mpi.cjs incdirs)"],
          "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "OMPI_SKIP_MPICXX", "MPICH_SKIP_MPICXX"],
          "cflags!": ["-fno-exceptions"],
          "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
          "cflags_cc": ["-std=c++17", "-O2"],
          "libraries": ["<!@(node native/find-mpi.cjs libs)", "-ldl"]
        }, {
          "type": "none"
        }]
      ]
    }
  ]
}
