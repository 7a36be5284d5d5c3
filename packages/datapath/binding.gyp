# node-gyp builds ./binding.gyp into ./build (npm runs it on install). The
# addon's target sits with its C sources in native/binding.gyp.
{
  'includes': ['native/binding.gyp'],
}
