package node

import (
	"context"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

func ended(state string) bool {
	return state == PushDone || state == PushCancelled || state == PushFailed
}

// watch streams the push's events to send: Accepted, the plan, every receiver's progress and
// result as they change, and the Report once the push has ended. Progress is coalesced (a
// slow watcher sees the latest counts, never a backlog); no result is ever skipped. It
// returns when the push has ended or its first round is over (with a FailedPrecondition status when the push failed as
// a whole, e.g. its upload broke) or when ctx ends; the push goes on either way.
func (r *pushRun) watch(ctx context.Context, send func(*pb.SubmitEvent) error) error {
	if err := send(&pb.SubmitEvent{Event: &pb.SubmitEvent_Accepted{Accepted: &pb.Accepted{PushId: r.rec.ID}}}); err != nil {
		return err
	}
	planSent, storedSent := false, false
	sentHeld := map[string]uint64{}
	sentResult := map[string]string{}
	for {
		r.mu.Lock()
		rec := r.rec
		ch := r.changed
		plan := r.plan
		total := r.total
		var progress []*pb.ReceiverProgress
		var results []*pb.ReceiverResult
		for _, n := range r.receiverNamesLocked() {
			x := r.rec.Receivers[n]
			if h := r.held[n]; h > sentHeld[n] && x.Status != recvOffline {
				sentHeld[n] = h
				progress = append(progress, &pb.ReceiverProgress{Receiver: n, ChunksHeld: h, ChunksTotal: total})
			}
			if x.Status != recvPending {
				key := x.Status + "\x00" + x.Result.Err
				if sentResult[n] != key {
					sentResult[n] = key
					results = append(results, recvToPB(n, x))
				}
			}
		}
		if plan == nil && rec.Digest != "" && (ended(rec.State) || len(results) > 0) {
			plan = r.syntheticPlanLocked()
		}
		var report *pb.Report
		if ended(rec.State) || rec.State == PushFollowing { // a following push reports its first round
			report = r.reportLocked()
		}
		r.mu.Unlock()

		if rec.Digest != "" && !storedSent {
			if err := send(&pb.SubmitEvent{Event: &pb.SubmitEvent_Stored{Stored: &pb.Stored{Digest: rec.Digest, Size: uint64(max(rec.Size, 0))}}}); err != nil {
				return err
			}
			storedSent = true
		}
		if rec.State == PushFailed && plan == nil {
			return status.Errorf(codes.FailedPrecondition, "push %s failed: %s", rec.ID, rec.Error)
		}
		if plan != nil && !planSent {
			if err := send(&pb.SubmitEvent{Event: &pb.SubmitEvent_Plan{Plan: plan}}); err != nil {
				return err
			}
			planSent = true
		}
		if planSent {
			if len(progress) > 0 {
				if err := send(&pb.SubmitEvent{Event: &pb.SubmitEvent_Progress{Progress: &pb.ProgressEvent{Receivers: progress}}}); err != nil {
					return err
				}
			}
			for _, res := range results {
				if err := send(&pb.SubmitEvent{Event: &pb.SubmitEvent_Result{Result: res}}); err != nil {
					return err
				}
			}
		} else {
			// Nothing is shown before the plan: send these again once it is.
			clear(sentHeld)
			clear(sentResult)
		}
		if report != nil {
			return send(&pb.SubmitEvent{Event: &pb.SubmitEvent_Report{Report: report}})
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// syntheticPlanLocked is the plan event of a push that never planned (every receiver was
// offline): the manifest and the receivers, no edges.
func (r *pushRun) syntheticPlanLocked() *pb.PlanEvent {
	pe := &pb.PlanEvent{TransferId: r.rec.ID, Receivers: r.receiverNamesLocked()}
	if m, err := r.m.a.store.Stat(r.rec.Digest); err == nil {
		pe.Manifest = m.Proto()
	}
	return pe
}

// recvToPB converts a receiver of the record to its protocol result.
func recvToPB(name string, x *recvRecord) *pb.ReceiverResult {
	res := x.Result
	res.Receiver = name
	out := resultToPB(res)
	switch x.Status {
	case recvVerified:
		out.Status = pb.ReceiverStatus_RECEIVER_STATUS_VERIFIED
	case recvOffline:
		out.Status = pb.ReceiverStatus_RECEIVER_STATUS_OFFLINE
	case recvPending:
		out.Status = pb.ReceiverStatus_RECEIVER_STATUS_UNSPECIFIED
	default:
		out.Status = pb.ReceiverStatus_RECEIVER_STATUS_FAILED
	}
	return out
}

// reportLocked is the push's report: every receiver the target matched, offline ones
// included, sorted by name.
func (r *pushRun) reportLocked() *pb.Report {
	end := r.rec.Ended
	if end.IsZero() {
		end = time.Now()
	}
	rep := &pb.Report{TransferId: r.rec.ID, Digest: r.rec.Digest, Elapsed: durationpb.New(end.Sub(r.rec.Started))}
	for _, n := range r.receiverNamesLocked() {
		rep.Receivers = append(rep.Receivers, recvToPB(n, r.rec.Receivers[n]))
	}
	sort.Slice(rep.Receivers, func(i, j int) bool { return rep.Receivers[i].GetReceiver() < rep.Receivers[j].GetReceiver() })
	return rep
}

// info describes the push for ListPushes.
func (r *pushRun) info() *pb.PushInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	pi := &pb.PushInfo{PushId: r.rec.ID, State: r.rec.State, Digest: r.rec.Digest, Target: r.rec.Target, Error: r.rec.Error,
		Started: timestamppb.New(r.rec.Started), Size: uint64(max(r.rec.Size, 0)), Report: r.reportLocked()}
	if !r.rec.Ended.IsZero() {
		pi.Ended = timestamppb.New(r.rec.Ended)
	}
	if !r.rec.FollowUntil.IsZero() {
		pi.FollowUntil = timestamppb.New(r.rec.FollowUntil)
	}
	return pi
}
