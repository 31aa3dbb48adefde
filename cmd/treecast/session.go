package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// exitInterrupted is the exit status of a command interrupted by Ctrl-C (128 + SIGINT).
const exitInterrupted = 130

// errDetached ends a session that detached on purpose (--detach).
var errDetached = errors.New("detached")

// session follows one push's events (push, watch): it prints the push's id when the agent
// accepts it, shows progress, and ends with the report. Ctrl-C (the command's context)
// detaches once any upload is complete: the push goes on at its agent.
type session struct {
	c      *cobra.Command
	agent  string
	detach bool // return as soon as the push runs
	asJSON bool

	uploading chan struct{} // closed when the upload ends; nil without one
	uploadErr error         // why the upload gave up (errInterrupted for Ctrl-C); set before uploading closes
	stored    chan struct{} // closed when the agent says the object is stored
	id        string
}

// uploadOK waits until the agent has stored the object of an upload (it needs the client no
// more) and reports whether it did; without an upload it reports true at once.
func (s *session) uploadOK(stop <-chan struct{}) bool {
	if s.uploading == nil {
		return true
	}
	select {
	case <-s.uploading:
		if s.uploadErr != nil {
			return false
		}
	case <-stop:
		return false
	}
	select {
	case <-s.stored:
		return true
	case <-stop:
		return false
	}
}

// uploadResult is uploadErr once the upload has ended (nil while it runs or without one).
func (s *session) uploadResult() error {
	if s.uploading == nil {
		return nil
	}
	select {
	case <-s.uploading:
		return s.uploadErr
	case <-time.After(time.Second): // a broken stream ends the upload at its next send
		return nil
	}
}

// run opens the event stream and follows it to the report.
func (s *session) run(open func(context.Context) (eventStream, error)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.stored = make(chan struct{})
	stream, err := open(ctx)
	if err != nil {
		return rpcError(s.agent, err)
	}
	var detached atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-s.c.Context().Done():
		case <-stop:
			return
		}
		if s.uploadOK(stop) {
			detached.Store(true)
			cancel()
		}
	}()
	acc := &acceptStream{s: stream, sess: s, stop: stop}
	plan, report, err := followPush(acc, newPushView(s.c.ErrOrStderr(), s.asJSON))
	switch {
	case errors.Is(err, errDetached):
		fmt.Fprintf(s.c.ErrOrStderr(), "push %s runs at agent %s; follow it with: treecast watch %s\n", s.id, s.agent, s.id)
		fmt.Fprintln(s.c.OutOrStdout(), s.id)
		return nil
	case err != nil && detached.Load():
		fmt.Fprintf(s.c.ErrOrStderr(), "\ndetached: push %s goes on at agent %s\n  reattach: treecast watch %s\n  report:   treecast status %s\n  stop it:  treecast cancel %s\n",
			s.id, s.agent, s.id, s.id, s.id)
		return &exitError{code: exitInterrupted, err: fmt.Errorf("detached from push %s", s.id)}
	case err != nil && errors.Is(s.uploadResult(), errInterrupted):
		return &exitError{code: exitInterrupted, err: fmt.Errorf("push %s: upload interrupted: nothing was stored or pushed", s.id)}
	case err != nil && status.Code(err) == codes.Unavailable && s.id != "":
		return fmt.Errorf("lost agent %s (%s); push %s goes on if the agent does: reattach with treecast watch %s",
			s.agent, status.Convert(err).Message(), s.id, s.id)
	case err != nil:
		return rpcError(s.agent, err)
	}
	return finishPush(s.c, report, plan, s.asJSON)
}

// acceptStream passes a push's events on, printing the push's id from its Accepted event
// (and ending the session there with --detach, once any upload is complete).
type acceptStream struct {
	s    eventStream
	sess *session
	stop <-chan struct{}
}

func (a *acceptStream) Recv() (*pb.SubmitEvent, error) {
	for {
		ev, err := a.s.Recv()
		if err != nil {
			return nil, err
		}
		if ev.GetStored() != nil {
			close(a.sess.stored)
			if a.sess.detach && a.sess.uploading != nil && a.sess.uploadOK(a.stop) {
				return nil, errDetached
			}
			continue
		}
		acc := ev.GetAccepted()
		if acc == nil {
			return ev, nil
		}
		a.sess.id = acc.GetPushId()
		fmt.Fprintf(a.sess.c.ErrOrStderr(), "push %s (Ctrl-C detaches; reattach with: treecast watch %s)\n", acc.GetPushId(), acc.GetPushId())
		if a.sess.detach && a.sess.uploading == nil {
			return nil, errDetached
		}
	}
}

// rpcError turns an agent's error into the command's: the status message without gRPC's
// prefix, exit status 2 for InvalidArgument (a usage error the agent caught), 1 otherwise.
func rpcError(agent string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("agent %s: %w", agent, err)
	}
	e := fmt.Errorf("agent %s: %s", agent, st.Message())
	if st.Code() == codes.InvalidArgument {
		return usageErr(e)
	}
	return &exitError{code: 1, err: e}
}
