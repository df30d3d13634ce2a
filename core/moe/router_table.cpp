// The router families. Adding a router: one router_<family>.cpp defining its family, plus one line here.
#include <sstream>

#include "core/moe/router.h"

namespace moelab::moe {

RouterFamily token_choice_family();
RouterFamily expert_choice_family();
RouterFamily soft_moe_family();
RouterFamily hash_family();
RouterFamily random_family();

const std::vector<RouterFamily>& router_families() {
  static const std::vector<RouterFamily> families = {token_choice_family(), expert_choice_family(), soft_moe_family(),
                                                     hash_family(), random_family()};
  return families;
}

const RouterFamily& find_router_family(const std::string& name) {
  for (const auto& f : router_families())
    for (const auto& n : f.names)
      if (n == name) return f;
  std::ostringstream os;
  for (const auto& n : router_names()) os << (os.tellp() > 0 ? ", " : "") << n;
  MOELAB_FAIL("moe.router = '" << name << "' is not one of: " << os.str());
}

std::vector<std::string> router_names() {
  std::vector<std::string> out;
  for (const auto& f : router_families()) out.insert(out.end(), f.names.begin(), f.names.end());
  return out;
}

}  // namespace moelab::moe
