// Map element access by fd. Keys and values are Buffers of exactly the
// map's key and value size (checked against the kernel's map info, so a
// layout mismatch with sabpf.h fails loudly instead of writing garbage).
// All run on the JS thread. Returned Buffers are owned by JS.
#pragma once

#include <napi.h>

namespace sabpf {

// mapUpdate(fd, key, value, flags): bpf_map_update_elem.
Napi::Value MapUpdate(const Napi::CallbackInfo& info);
// mapUpdateBatch(fd, keys, values, count, flags): keys and values hold count
// elements back to back. Returns the number written (BPF_MAP_UPDATE_BATCH).
Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info);
// mapDelete(fd, key): true if deleted, false if absent.
Napi::Value MapDelete(const Napi::CallbackInfo& info);
// mapLookup(fd, key): the value as a new Buffer, or null if absent.
Napi::Value MapLookup(const Napi::CallbackInfo& info);
// mapKeys(fd): every key as a Buffer (bpf_map_get_next_key).
Napi::Value MapKeys(const Napi::CallbackInfo& info);
// readPercpuU64(fd, index): the per-CPU u64 values of one element, as BigInts.
Napi::Value ReadPercpuU64(const Napi::CallbackInfo& info);

}  // namespace sabpf
