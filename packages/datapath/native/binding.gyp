# The membrane_bpf addon: plain C over node_api.h, linked against the
# system's libbpf (Debian: libbpf-dev libelf-dev zlib1g-dev).
# node-gyp reads ../binding.gyp, which includes this file; source paths here
# are relative to this folder.
{
  'targets': [
    {
      'target_name': 'membrane_bpf',
      'sources': [
        'addon.c',
        'bpffs.c',
        'cgroup.c',
        'common.c',
        'fd.c',
        'map.c',
        'map-shape.c',
        'object.c',
        'proxy-socket.c',
        'ringbuf.c',
        'sockopt.c',
        'tc.c',
        'test-run.c',
        'udp-socket.c',
      ],
      'defines': ['NAPI_VERSION=8', '_GNU_SOURCE'],
      'cflags_c': ['-std=gnu11', '-Wall', '-Wextra', '-Wno-unused-parameter',
                   '-Wno-missing-field-initializers', '-Werror=implicit-function-declaration'],
      'libraries': ['-lbpf', '-lelf', '-lz'],
    },
  ],
}
