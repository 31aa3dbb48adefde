package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	pb "github.com/treecast/treecast/proto/treecast/v1"
	"github.com/treecast/treecast/scheduler"
)

// pushView follows a Submit stream: it shows progress while the push runs and keeps what the
// final report needs.
type pushView interface {
	plan(*pb.PlanEvent)
	progress(receiver string, held, total uint64)
	result(*pb.ReceiverResult)
	// finish stops drawing; it is called once, before the report is printed.
	finish()
}

// newPushView returns progress bars on a terminal wide enough for them, plain lines
// otherwise (pipes, CI logs), or nothing when quiet.
func newPushView(w io.Writer, quiet bool) pushView {
	if quiet {
		return nopView{}
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		width, _, err := term.GetSize(int(f.Fd()))
		if err == nil && width >= 60 {
			return newBarView(f, width)
		}
	}
	return &lineView{w: w, last: map[string]int{}}
}

type nopView struct{}

func (nopView) plan(*pb.PlanEvent)              {}
func (nopView) progress(string, uint64, uint64) {}
func (nopView) result(*pb.ReceiverResult)       {}
func (nopView) finish()                         {}

// lineView prints a line when the push starts, at every quarter of a receiver's progress,
// and at every result.
type lineView struct {
	w    io.Writer
	last map[string]int
}

func (v *lineView) plan(p *pb.PlanEvent) {
	fmt.Fprint(v.w, planLine(p))
	fmt.Fprintf(v.w, "push %s: %d receivers, %d overlay edges\n", p.GetTransferId(), len(p.GetReceivers()), len(p.GetEdges()))
}

func (v *lineView) progress(r string, held, total uint64) {
	if total == 0 {
		return
	}
	q := int(4 * held / total)
	if q > v.last[r] && q < 4 {
		v.last[r] = q
		fmt.Fprintf(v.w, "  %s: %d%%\n", r, 25*q)
	}
}

func (v *lineView) result(r *pb.ReceiverResult) {
	switch r.GetStatus() {
	case pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED:
		fmt.Fprintf(v.w, "  %s: verified in %.2fs\n", r.GetReceiver(), r.GetElapsed().AsDuration().Seconds())
	case pb.ReceiverStatus_RECEIVER_STATUS_OFFLINE:
		fmt.Fprintf(v.w, "  %s: offline (not sent)\n", r.GetReceiver())
	default:
		fmt.Fprintf(v.w, "  %s: FAILED: %s\n", r.GetReceiver(), r.GetError())
	}
}

func (v *lineView) finish() {}

// barView draws one bar for the whole push and, when the terminal has room, one per
// receiver.
type barView struct {
	w       io.Writer
	p       *mpb.Progress
	width   int
	rows    int
	total   *mpb.Bar
	bars    map[string]*mpb.Bar
	held    map[string]uint64
	chunks  uint64
	perRecv bool
}

func newBarView(w io.Writer, width int) *barView {
	_, rows, _ := term.GetSize(int(os.Stdout.Fd()))
	return &barView{w: w, p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(min(width-40, 60))), width: width, rows: rows,
		bars: map[string]*mpb.Bar{}, held: map[string]uint64{}}
}

func (v *barView) plan(p *pb.PlanEvent) {
	fmt.Fprint(v.w, planLine(p))
	recv := p.GetReceivers()
	v.perRecv = v.rows == 0 || len(recv)+4 < v.rows
	v.total = v.p.New(0, mpb.BarStyle(), mpb.PrependDecorators(decor.Name("push ", decor.WC{W: 12})),
		mpb.AppendDecorators(decor.Percentage(decor.WC{W: 6}), decor.Name(" "), decor.Elapsed(decor.ET_STYLE_GO)))
	if v.perRecv {
		for _, r := range recv {
			v.bars[r] = v.p.New(0, mpb.BarStyle(), mpb.PrependDecorators(decor.Name(r, decor.WC{W: 12})),
				mpb.AppendDecorators(decor.Percentage(decor.WC{W: 6})))
		}
	}
}

func (v *barView) progress(r string, held, total uint64) {
	if v.total == nil || total == 0 {
		return
	}
	if v.chunks == 0 {
		v.chunks = total
		v.total.SetTotal(int64(total)*int64(max(1, len(v.bars))), false)
		for _, b := range v.bars {
			b.SetTotal(int64(total), false)
		}
	}
	if held > v.held[r] {
		v.total.IncrInt64(int64(held - v.held[r]))
		v.held[r] = held
	}
	if b := v.bars[r]; b != nil {
		b.SetCurrent(int64(held))
	}
}

func (v *barView) result(r *pb.ReceiverResult) {
	if b := v.bars[r.GetReceiver()]; b != nil {
		if r.GetStatus() == pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED {
			b.SetTotal(-1, true)
		} else {
			b.Abort(false)
		}
	}
}

func (v *barView) finish() {
	if v.total != nil {
		v.total.SetTotal(-1, true)
		for _, b := range v.bars {
			if !b.Completed() {
				b.Abort(false)
			}
		}
	}
	v.p.Wait()
}

// eventStream is a stream of push events: Submit, Upload or Watch.
type eventStream interface {
	Recv() (*pb.SubmitEvent, error)
}

// followPush consumes a push's event stream into view and returns the plan and the final
// report.
func followPush(stream eventStream, view pushView) (*pb.PlanEvent, *pb.Report, error) {
	var plan *pb.PlanEvent
	defer view.finish()
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return plan, nil, fmt.Errorf("the agent ended the push without a report")
		}
		if err != nil {
			return plan, nil, err
		}
		switch e := ev.GetEvent().(type) {
		case *pb.SubmitEvent_Plan:
			plan = e.Plan
			view.plan(e.Plan)
		case *pb.SubmitEvent_Progress:
			for _, r := range e.Progress.GetReceivers() {
				view.progress(r.GetReceiver(), r.GetChunksHeld(), r.GetChunksTotal())
			}
		case *pb.SubmitEvent_Result:
			view.result(e.Result)
		case *pb.SubmitEvent_Report:
			return plan, e.Report, nil
		}
	}
}

// pushJSON is the --json form of a push's outcome.
type pushJSON struct {
	Digest    string             `json:"digest"`
	Seconds   float64            `json:"seconds"`
	Plan      *scheduler.Summary `json:"plan,omitempty"`
	Receivers []receiverJSON     `json:"receivers"`
}

// summaryOf is the scheduler's summary of the plan an agent ran.
func summaryOf(s *pb.PlanSummary) scheduler.Summary {
	return scheduler.Summary{Strategy: scheduler.Strategy(s.GetStrategy()), Auto: s.GetAuto(), Stripes: int(s.GetStripes()),
		Parity: int(s.GetParity()), Receivers: int(s.GetReceivers()), Depth: int(s.GetDepth()), ChunkSize: int(s.GetChunkSize()),
		MaxArcCopies: s.GetMaxArcCopies(), TotalCopies: s.GetTotalCopies()}
}

// planLine is the one line that names the plan of a push.
func planLine(p *pb.PlanEvent) string {
	if s := p.GetSummary(); s != nil {
		return fmt.Sprintf("plan: %s\n", summaryOf(s))
	}
	return ""
}

type receiverJSON struct {
	Name    string  `json:"name"`
	Status  string  `json:"status"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
	// Hook is the outcome of the receiver's channel hook (absent: it ran none).
	Hook *hookJSON `json:"hook,omitempty"`
	// AlreadyHeld counts the chunks the receiver held before the push reached it (not sent).
	AlreadyHeld uint64 `json:"chunks_already_held,omitempty"`
}

func reportJSON(r *pb.Report) pushJSON {
	out := pushJSON{Digest: r.GetDigest(), Seconds: r.GetElapsed().AsDuration().Seconds(), Receivers: []receiverJSON{}}
	for _, rr := range sortedResults(r) {
		status := statusWord(rr.GetStatus())
		out.Receivers = append(out.Receivers, receiverJSON{Name: rr.GetReceiver(), Status: status, Seconds: rr.GetElapsed().AsDuration().Seconds(), Error: rr.GetError(),
			Hook: hookOf(rr), AlreadyHeld: rr.GetChunksAlreadyHeld()})
	}
	return out
}

func sortedResults(r *pb.Report) []*pb.ReceiverResult {
	rs := append([]*pb.ReceiverResult{}, r.GetReceivers()...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].GetReceiver() < rs[j].GetReceiver() })
	return rs
}

// writeReport prints the per-receiver table: status, time, throughput, error.
func writeReport(w io.Writer, r *pb.Report, size uint64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVER\tSTATUS\tSECONDS\tMB/S\tERROR")
	for _, rr := range sortedResults(r) {
		status, rate := statusWord(rr.GetStatus()), "-"
		secs := rr.GetElapsed().AsDuration().Seconds()
		if rr.GetStatus() == pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED {
			switch {
			case rr.GetBytesReceived() == 0 && rr.GetChunksAlreadyHeld() > 0:
				rate = "held" // it had the object already: nothing crossed the network
			case secs > 0 && rr.GetBytesReceived() > 0:
				rate = fmt.Sprintf("%.1f", float64(rr.GetBytesReceived())/1e6/secs)
			case secs > 0 && size > 0:
				rate = fmt.Sprintf("%.1f", float64(size)/1e6/secs)
			}
		}
		if rr.GetStatus() == pb.ReceiverStatus_RECEIVER_STATUS_OFFLINE {
			secs = 0
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%s\n", rr.GetReceiver(), status, secs, rate, oneLine(withHook(rr)))
	}
	tw.Flush()
	v, f, o := countResults(r)
	fmt.Fprintf(w, "%d verified, %d failed, %d offline in %.2fs (%s)\n", v, f, o, r.GetElapsed().AsDuration().Seconds(), r.GetDigest())
}

// statusWord names a receiver's status.
func statusWord(s pb.ReceiverStatus) string {
	switch s {
	case pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED:
		return "verified"
	case pb.ReceiverStatus_RECEIVER_STATUS_OFFLINE:
		return "offline"
	case pb.ReceiverStatus_RECEIVER_STATUS_UNSPECIFIED:
		return "pending"
	}
	return "failed"
}

// countResults counts the receivers of a report: verified, failed (pending ones included)
// and offline (nothing was sent to them).
func countResults(r *pb.Report) (verified, failed, offline int) {
	for _, rr := range r.GetReceivers() {
		switch rr.GetStatus() {
		case pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED:
			verified++
		case pb.ReceiverStatus_RECEIVER_STATUS_OFFLINE:
			offline++
		default:
			failed++
		}
	}
	return
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func encodeJSON(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

var _ = time.Second
