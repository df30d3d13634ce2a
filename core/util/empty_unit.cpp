// Keeps a library target valid while its folder has no sources of its own yet.
namespace moelab::detail { int empty_unit_anchor = 0; }
