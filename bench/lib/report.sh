# Report part of bench/run.sh (sourced): normalise each sub-benchmark's JSON into the
# bench convention, compute ratios and goal verdicts, print the table, write all.json
# and draw the ratio chart with gnuplot.

# normalise FILE SOURCE: print the rows of FILE in the convention (one JSON list), with
# "source" added. Accepts the convention itself (a list of rows), or an object holding
# the list under rows/results/metrics (a small adapter for scripts written before the
# convention); rows without a metric or a numeric netd figure are dropped.
normalise() {
  jq --arg src "$2" '
    (if type == "array" then . elif type == "object" then (.rows // .results // .metrics // []) else [] end)
    | map(select(type == "object" and (.metric | type) == "string"))
    | map({
        metric: .metric,
        unit: (.unit // ""),
        netd: (if (.netd | type) == "number" then .netd else null end),
        reference: (if (.reference | type) == "number" then .reference else null end),
        reference_name: (.reference_name // ""),
        better: (if .better == "lower" then "lower" else "higher" end),
        goal: (.goal // "")
      } + (if (.goal_ratio | type) == "number" then {goal_ratio: .goal_ratio} else {} end)
        + (if (.met | type) == "boolean" then {met: .met} else {} end)
        + (if .note then {note: .note} else {} end)
        + {source: $src})' "$1"
}

# verdicts: stdin = list of rows -> rows with ratio (netd/reference), advantage (how many
# times better netd is, > 1 = netd better) and met ("yes", "NO", "n/a", "-").
verdicts() {
  jq '
    map(. + (
      if (.netd | type) == "number" and (.reference | type) == "number" and .reference != 0 and .netd != 0
      then {ratio: (.netd / .reference)} else {ratio: null} end))
    | map(. + {advantage: (if .ratio == null then null elif .better == "lower" then 1 / .ratio else .ratio end)})
    | map(. + {met: (
        if (.met | type) == "boolean" then (if .met then "yes" else "NO" end)
        elif .goal_ratio == null then (if .netd == null then "n/a" else "-" end)
        elif .ratio == null then "n/a"
        elif .goal_ratio == 1 and .ratio == 1 then "NO"
        elif .better == "lower" then (if .ratio <= .goal_ratio then "yes" else "NO" end)
        else (if .ratio >= .goal_ratio then "yes" else "NO" end) end)})'
}

# fmt_table ALL_JSON: the human table
fmt_table() {
  jq -r '.rows[] | [ .metric, .unit,
      (if .netd == null then "-" else (.netd * 1000 | round / 1000 | tostring) end),
      (if .reference == null then "-" else (.reference * 1000 | round / 1000 | tostring) end),
      .reference_name,
      (if .ratio == null then "-" else (.ratio * 1000 | round / 1000 | tostring) end),
      .better, .goal, .met ] | @tsv' "$1" |
    awk -F'\t' 'BEGIN {
        printf "%-34s %-5s %12s %12s  %-32s %8s  %-6s  %-40s %s\n", "metric", "unit", "netd", "reference", "reference is", "ratio", "better", "goal", "met?"
        printf "%s\n", "-----------------------------------------------------------------------------------------------------------------------------------------------------------"
      } { printf "%-34s %-5s %12s %12s  %-32s %8s  %-6s  %-40s %s\n", $1, $2, $3, $4, substr($5,1,32), $6, $7, substr($8,1,40), $9 }'
}

# fmt_markdown ALL_JSON: the same table in Markdown (for BENCHMARKS.md)
fmt_markdown() {
  echo "| metric | unit | netd | reference | reference is | ratio netd/ref | better | goal | met? |"
  echo "|---|---|---:|---:|---|---:|---|---|---|"
  jq -r '.rows[] | "| \(.metric) | \(.unit) | \(if .netd == null then "-" else (.netd * 1000 | round / 1000) end) | \(if .reference == null then "-" else (.reference * 1000 | round / 1000) end) | \(.reference_name) | \(if .ratio == null then "-" else (.ratio * 1000 | round / 1000) end) | \(.better) | \(.goal) | \(.met) |"' "$1"
}

# chart ALL_JSON PNG: bars of netd's advantage (log scale; > 1 = netd better) per row
# with a reference, and the goal as a point where the row has one.
chart() {
  local all=$1 png=$2 dat
  command -v gnuplot >/dev/null || { log "no gnuplot: chart skipped"; return 0; }
  dat=$(mktemp)
  jq -r '.rows[] | select(.advantage != null) |
      [ ((.metric + " vs " + (.reference_name | split(" ")[0])) ),
        .advantage,
        (if .goal_ratio == null then "NaN" elif .better == "lower" then 1 / .goal_ratio else .goal_ratio end) ] | @tsv' "$all" >"$dat"
  local n
  n=$(wc -l <"$dat")
  ((n > 0)) || { log "no rows with a reference: chart skipped"; rm -f "$dat"; return 0; }
  gnuplot <<EOF
set terminal pngcairo size 1400,$((300 + 38 * n)) font "DejaVu Sans,10" noenhanced
set output "$png"
set datafile separator "\t"
set title "netd vs reference: advantage (x times better; bars right of 1 = netd better; dots = goal)"
set logscale x 2
set xrange [0.05:1024]
set yrange [-1:$n]
set ytics nomirror
set grid xtics
set style fill solid 0.6
set key bottom right
set arrow from 1, graph 0 to 1, graph 1 nohead lw 2 lc rgb "#444444"
plot "$dat" using 2:0:(\$2<1?\$2:1):(\$2<1?1:\$2):(\$0-0.35):(\$0+0.35):ytic(1) with boxxyerrorbars lc rgb "#3b7dd8" title "netd advantage", \
     "" using 2:0:(sprintf("%.2fx", \$2)) with labels left offset 0.5,0 notitle, \
     "" using 3:0 with points pt 7 ps 1.4 lc rgb "#d62728" title "goal"
EOF
  rm -f "$dat"
}
