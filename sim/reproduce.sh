#!/usr/bin/env bash
# Regenerates every figure and table of sim/README.md: the figures as sim/figures/*.png (drawn
# by `treecast sim --plot`), the runs as sim/figures/*.csv, and the tables as
# sim/figures/tables.md, from which the README's tables are copied.
#
# Usage: sim/reproduce.sh [SEEDS]   (default 1-5; "1" for a quick look)
#        BENCH=1 sim/reproduce.sh   (also runs the engine's benchmarks into the tables)
# It builds treecast once and runs every experiment one after the other; with 5 seeds it takes
# about ten minutes on two cores. Every number depends only on the seeds (wall times aside).
set -euo pipefail
seeds=${1:-1-5}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/sim/figures
mkdir -p "$out"
rm -f "$out"/*.png "$out"/*.csv
bin=$(mktemp -d)/treecast
(cd "$root" && go build -o "$bin" ./cmd/treecast)
tables=$out/tables.md
: >"$tables"

# sim NAME ARGS...: runs `treecast sim ARGS --seeds $seeds` into NAME.csv and records the wall
# time; with PLOT=1 it also draws NAME.png (only the README's figures are drawn).
sim() {
	local name=$1
	shift
	local t0 t1 plot=()
	[ "${PLOT:-}" = 1 ] && plot=(--plot "$out/$name.png")
	t0=$(date +%s.%N)
	"$bin" sim --progress none --seeds "$seeds" "$@" --format csv "${plot[@]}" >"$out/$name.csv"
	t1=$(date +%s.%N)
	echo "| \`$name\` | \`treecast sim $*\` | $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') |" >>"$out/times.md"
}

# means FILE: one line per scheme (first-appearance order) with the means over seeds of
# bandwidth, max copies, mean TCT, p99 TCT, mean RCT, p99 RCT. Fields are counted from the end
# of the line, since a topology name may hold quoted commas.
means() {
	awk -F, 'NR>1 { s=$1; if (!(s in n)) order[++k]=s; n[s]++; bw[s]+=$(NF-9); mc[s]+=$(NF-8); mt[s]+=$(NF-7); pt[s]+=$(NF-5); mr[s]+=$(NF-3); pr[s]+=$(NF-1) }
		END { for (i=1;i<=k;i++) { s=order[i]; printf "%s %g %g %g %g %g %g\n", s, bw[s]/n[s], mc[s]/n[s], mt[s]/n[s], pt[s]/n[s], mr[s]/n[s], pr[s]/n[s] } }' "$1"
}

# metric FILE SCHEME FIELD: one of the means (2 bandwidth, 3 max copies, 4 mean TCT, 5 p99
# TCT, 6 mean RCT, 7 p99 RCT).
metric() { means "$1" | awk -v s="$2" -v f="$3" '$1==s {print $f}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
saved() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f%%", 100*(1-a/b)}'; }

: >"$out/times.md"

# 1. QuickCast Fig. 8 on GScale and Cogentco.
PLOT=1 sim quickcast-fig8 --preset quickcast-fig8
PLOT=1 sim quickcast-fig8-cogentco --preset quickcast-fig8-cogentco
{
	echo "### QuickCast Fig. 8 (seeds $seeds)"
	echo
	echo "| topology | scheme | mean RCT / dccast | mean TCT / dccast | p99 TCT / dccast | bandwidth / dccast |"
	echo "| --- | --- | ---: | ---: | ---: | ---: |"
	for f in quickcast-fig8 quickcast-fig8-cogentco; do
		topo=GScale
		[ $f = quickcast-fig8-cogentco ] && topo=Cogentco
		for s in quickcast@maxmin dccast@maxmin quickcast; do
			echo "| $topo | $s | $(ratio "$(metric "$out/$f.csv" $s 6)" "$(metric "$out/$f.csv" dccast 6)") |" \
				"$(ratio "$(metric "$out/$f.csv" $s 4)" "$(metric "$out/$f.csv" dccast 4)") |" \
				"$(ratio "$(metric "$out/$f.csv" $s 5)" "$(metric "$out/$f.csv" dccast 5)") |" \
				"$(ratio "$(metric "$out/$f.csv" $s 2)" "$(metric "$out/$f.csv" dccast 2)") |"
		done
	done
	echo
} >>"$tables"

# 2. The same, over Pareto shapes of mean 20 (capped at 2,000): the less skew, the less gain.
{
	echo "### QuickCast Fig. 8 by Pareto shape, sizes of mean 20 capped at 2,000 (seeds $seeds)"
	echo
	echo "| volume | GScale: quickcast@maxmin / dccast, mean RCT | dccast@maxmin / dccast | Cogentco: quickcast@maxmin / dccast | dccast@maxmin / dccast |"
	echo "| --- | ---: | ---: | ---: | ---: |"
} >>"$tables"
for v in pareto:0.7,0.54,max=2000 pareto:0.8,1.08,max=2000 pareto:0.9,1.79,max=2000 pareto:1,2.62,max=2000 pareto:1.1,3.51,max=2000; do
	tag=shape-${v%%,max*}
	tag=${tag/:/-}
	tag=${tag//,/_}
	row="| \`$v\`"
	for p in quickcast-fig8 quickcast-fig8-cogentco; do
		sim "$p-$tag" --preset $p --volume "$v" --schemes dccast,quickcast@maxmin,dccast@maxmin
		f=$out/$p-$tag.csv
		row="$row | $(ratio "$(metric "$f" quickcast@maxmin 6)" "$(metric "$f" dccast 6)") | $(ratio "$(metric "$f" dccast@maxmin 6)" "$(metric "$f" dccast 6)")"
	done
	echo "$row |" >>"$tables"
done
echo >>"$tables"

# 3. DCCast against P2P (LP over 3 shortest paths, and one shortest path) on GScale by copies.
{
	echo "### DCCast against P2P on GScale by number of copies (seeds $seeds)"
	echo
	echo "| copies | bandwidth saved vs p2p-lp@srpt | vs p2p | p99 TCT saved vs p2p-lp@srpt | vs p2p-lp@fcfs | vs p2p |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
} >>"$tables"
for n in 2 3 4 5 6; do
	PLOT=$([ $n = 6 ] && echo 1 || true) sim dccast-p2p-$n --preset dccast-p2p --copies $n --schemes dccast,p2p-lp@srpt,p2p-lp@fcfs,p2p
	f=$out/dccast-p2p-$n.csv
	d2=$(metric "$f" dccast 2)
	d5=$(metric "$f" dccast 5)
	echo "| $n | $(saved "$d2" "$(metric "$f" p2p-lp@srpt 2)") | $(saved "$d2" "$(metric "$f" p2p 2)") |" \
		"$(saved "$d5" "$(metric "$f" p2p-lp@srpt 5)") | $(saved "$d5" "$(metric "$f" p2p-lp@fcfs 5)") | $(saved "$d5" "$(metric "$f" p2p 5)") |" >>"$tables"
done
echo >>"$tables"

# 4. DCCast against RANDOM and MINMAX on the authors' random graphs (50 nodes, 150 edges), 6
# copies, graphs 1 to 5.
{
	echo "### DCCast against RANDOM and MINMAX on ringchords:50,150,G, 6 copies (seeds $seeds)"
	echo
	echo "| graph | p99 TCT saved vs random | vs minmax | mean TCT saved vs random | vs minmax | bandwidth random / dccast | minmax / dccast |"
	echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} >>"$tables"
for gr in 1 2 3 4 5; do
	PLOT=$([ $gr = 1 ] && echo 1 || true) sim dccast-random-$gr --preset dccast-random --topo ringchords:50,150,$gr
	f=$out/dccast-random-$gr.csv
	echo "| $gr | $(saved "$(metric "$f" dccast 5)" "$(metric "$f" random 5)") | $(saved "$(metric "$f" dccast 5)" "$(metric "$f" minmax 5)") |" \
		"$(saved "$(metric "$f" dccast 4)" "$(metric "$f" random 4)") | $(saved "$(metric "$f" dccast 4)" "$(metric "$f" minmax 4)") |" \
		"$(ratio "$(metric "$f" random 2)" "$(metric "$f" dccast 2)") | $(ratio "$(metric "$f" minmax 2)" "$(metric "$f" dccast 2)") |" >>"$tables"
done
echo >>"$tables"

# 5. Beyond the papers: treecast's overlay plans (agents at the sites) next to SDN multicast,
# under QuickCast's workload.
{
	echo "### Overlay plans against SDN multicast, QuickCast's workload (seeds $seeds)"
	echo
	echo "| topology | scheme | bandwidth / dccast@maxmin | max copies | mean RCT | p99 RCT | mean TCT | p99 TCT |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
} >>"$tables"
for p in quickcast-fig8 quickcast-fig8-cogentco; do
	PLOT=1 sim overlay-$p --preset $p --schemes dccast@maxmin,quickcast@maxmin,dccast,overlay:chain,overlay:forest
	f=$out/overlay-$p.csv
	topo=GScale
	[ $p = quickcast-fig8-cogentco ] && topo=Cogentco
	base=$(metric "$f" dccast@maxmin 2)
	means "$f" | while read -r s bw mc mt pt mr pr; do
		printf '| %s | %s | %s | %.2f | %.0f | %.0f | %.0f | %.0f |\n' "$topo" "$s" "$(ratio "$bw" "$base")" "$mc" "$mr" "$pr" "$mt" "$pt"
	done >>"$tables"
done
echo >>"$tables"

# 6. Overlay plans on a fat-tree: about 100 transfers of 1 to 6 receivers.
{
	echo "### Overlay plans on fattree:16, lambda 5, horizon 20 (seeds $seeds)"
	echo
	echo "| scheme | bandwidth / unicast | max copies | mean TCT | p99 TCT | mean RCT |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
} >>"$tables"
sim overlay-fattree16 --topo fattree:16 --schemes overlay:unicast,overlay:chain,overlay:tree,overlay:forest --lambda 5 --horizon 20
f=$out/overlay-fattree16.csv
base=$(metric "$f" overlay:unicast 2)
means "$f" | while read -r s bw mc mt pt mr pr; do
	printf '| %s | %s | %.2f | %.0f | %.0f | %.0f |\n' "$s" "$(ratio "$bw" "$base")" "$mc" "$mt" "$pt" "$mr"
done >>"$tables"
echo >>"$tables"

# 7. Presets, and what every run above took.
for p in dccast dccast-p2p dccast-random; do
	sim preset-$p --preset $p
done
{
	echo "### Wall time of each run (seeds $seeds, one after the other)"
	echo
	echo "| run | command | seconds |"
	echo "| --- | --- | ---: |"
	cat "$out/times.md"
} >>"$tables"
rm "$out/times.md"

# 8. With BENCH=1: the engine's benchmarks (every preset's schemes on 5 seeds, DCCast's
# workload, overlay plans on a fat-tree), one run each, with allocations.
if [ "${BENCH:-}" = 1 ]; then
	(cd "$root" && go test ./sim -run XXX -bench 'Preset|DCCast|Overlay' -benchtime 1x -benchmem) >"$out/bench.txt"
	{
		echo
		echo "### Benchmarks (\`go test ./sim -run XXX -bench 'Preset|DCCast|Overlay' -benchtime 1x -benchmem\`)"
		echo
		echo "| benchmark | seconds | MB allocated | allocations |"
		echo "| --- | ---: | ---: | ---: |"
		awk '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name); printf "| %s | %.2f | %.0f | %.0f |\n", name, $3/1e9, $5/1e6, $7 }' "$out/bench.txt"
	} >>"$tables"
fi
echo "wrote $tables and $(ls "$out"/*.png | wc -l) figures in $out"
