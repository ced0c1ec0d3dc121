{
  "targets": [
    {
      "target_name": "sabpf",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/object.cc",
        "src/fds.cc",
        "src/lock.cc",
        "src/maps.cc",
        "src/ringbuf.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../bpf"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-comment"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
