#!/usr/bin/env bash
# Prints a Kamailio 5.6 config that answers INVITEs for the 141 14+ numbers with the same 302 as
# veertien (Contact: <tel:+31…>, from data/numberplan/netnummergebieden.csv). Used by the
# side-by-side benchmarks (redirect.sh, instructions.sh).
#   scripts/bench/kamailio-redirect-cfg.sh PORT [tm|sl] > kamailio.cfg
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KPORT=$1
MODE=${2:-tm}
# Kamailio: same table, stateful like veertien (tm: retransmissions absorbed, 302 resent
# until ACK) — the fair comparison; KAMAILIO_MODE=sl gives the stateless variant.
{
  cat <<KCFG
#!KAMAILIO
debug=0
log_stderror=yes
children=2
listen=udp:127.0.0.1:$KPORT
disable_tcp=yes
auto_aliases=no
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "htable.so"
modparam("htable", "htable", "rt=>size=8;")
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (is_method("ACK")) {
KCFG
  if [ "$MODE" = tm ]; then echo '        t_check_trans();'; fi
  cat <<'KCFG'
        exit;
    }
    if (!is_method("INVITE")) { sl_send_reply("405", "Method Not Allowed"); exit; }
    if ($sht(rt=>$rU) == $null) { sl_send_reply("404", "Not Found"); exit; }
    # The destination goes in the request URI: for a 3xx Kamailio writes the destination set
    # as the reply's Contact itself. (An append_to_reply Contact leaves the set empty, and then
    # every 302 logs the warning "print_dset(): no r-uri or branches" — a stderr write per
    # call that the benchmarks before 2026-11-23 charged to Kamailio.)
    $ru = $sht(rt=>$rU);
KCFG
  if [ "$MODE" = tm ]; then
    echo '    t_newtran();'; echo '    t_reply("302", "Moved Temporarily");'
  else
    echo '    sl_send_reply("302", "Moved Temporarily");'
  fi
  echo '    exit;'
  echo '}'
  echo 'event_route[htable:mod-init] {'
  # One row per 14+ number; the destination shape matches veertien's (tel: E.164).
  tail -n +2 "$ROOT/data/numberplan/netnummergebieden.csv" | cut -d, -f1,2 | while IFS=, read -r code fourteen; do
    nsn=${code#0}; pad=$(printf '%0*d' $((9 - ${#nsn})) 0)
    echo "    \$sht(rt=>$fourteen) = \"tel:+31$nsn${pad:0:$((9 - ${#nsn}))}\";"
  done
  echo '}'
}
