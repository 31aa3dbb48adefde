package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/store"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

// uploadBlock is the size of one Upload data message.
const uploadBlock = 1 << 20

// rereadMax bounds the files whose digest the CLI checks by a second read after the upload
// (the stat checks cover every size).
const rereadMax = 64 << 20

// errInterrupted ends an upload cut short by Ctrl-C.
var errInterrupted = errors.New("interrupted")

// pushSource is what `push` sends: a local file or standard input (uploaded), a path on the
// agent's host (agent:PATH, read there) or a digest the agent holds.
type pushSource struct {
	file   *os.File // uploaded; nil otherwise
	name   string
	size   int64 // -1 for standard input
	before os.FileInfo
}

// objectSource parses push's argument into req's object or an upload source.
func objectSource(c *cobra.Command, req *pb.SubmitRequest, arg string) (*pushSource, error) {
	switch {
	case strings.HasPrefix(arg, "sha256:"):
		if _, err := store.ParseDigest(arg); err != nil {
			return nil, usageErr(fmt.Errorf("%s: not a digest (sha256: and 64 lower-case hex digits); a file of that name is ./%s", arg, arg))
		}
		req.Object = &pb.SubmitRequest_Digest{Digest: arg}
		return nil, nil
	case strings.HasPrefix(arg, "agent:"):
		p := strings.TrimPrefix(arg, "agent:")
		if !filepath.IsAbs(p) {
			return nil, usageErr(fmt.Errorf("%s: a path on the agent's host must be absolute (agent:/var/lib/treecast/app.tar)", arg))
		}
		req.Object = &pb.SubmitRequest_Path{Path: filepath.Clean(p)}
		return nil, nil
	case arg == "-":
		return &pushSource{file: os.Stdin, name: "-", size: -1}, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, usageErr(fmt.Errorf("push: %w", err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("push: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, usageErr(fmt.Errorf("push: %s is not a regular file (use - for standard input)", arg))
	}
	return &pushSource{file: f, name: filepath.Base(arg), size: fi.Size(), before: fi}, nil
}

// upload sends the source's bytes and an UploadEnd on stream. A file that changes while it
// is read (size, modification or change time against a second look; for files up to
// rereadMax, the digest of a second read) ends the upload with an UploadEnd error, so the
// agent stores and pushes nothing. Ctrl-C (ctx) does the same. Cost: one read of the file
// (two for small files), one SHA-256 pass.
func (s *pushSource) upload(ctx context.Context, stream pb.Agent_UploadClient) error {
	h := sha256.New()
	buf := make([]byte, uploadBlock)
	var n int64
	giveUp := func(err error) error {
		_ = stream.Send(&pb.UploadRequest{Msg: &pb.UploadRequest_End{End: &pb.UploadEnd{Error: err.Error()}}})
		_ = stream.CloseSend()
		return err
	}
	for {
		if ctx.Err() != nil {
			return giveUp(errInterrupted)
		}
		k, err := io.ReadFull(s.file, buf)
		if k > 0 {
			h.Write(buf[:k])
			n += int64(k)
			if serr := stream.Send(&pb.UploadRequest{Msg: &pb.UploadRequest_Data{Data: buf[:k]}}); serr != nil {
				return nil // the agent ended the call: its reason comes on the receiving side
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return giveUp(fmt.Errorf("read %s: %w", s.name, err))
		}
	}
	digest := fmt.Sprintf("sha256:%x", h.Sum(nil))
	if s.before != nil {
		after, err := s.file.Stat()
		if err != nil {
			return giveUp(err)
		}
		if err := node.CheckUnchanged(s.before, after, n); err != nil {
			return giveUp(fmt.Errorf("%s: %w", s.name, err))
		}
		if n <= rereadMax {
			h2 := sha256.New()
			if _, err := io.Copy(h2, io.NewSectionReader(s.file, 0, n)); err != nil {
				return giveUp(err)
			}
			if d2 := fmt.Sprintf("sha256:%x", h2.Sum(nil)); d2 != digest {
				return giveUp(fmt.Errorf("%s: %w: a second read gives %s, the first %s", s.name, node.ErrObjectChanged, d2, digest))
			}
		}
	}
	if err := stream.Send(&pb.UploadRequest{Msg: &pb.UploadRequest_End{End: &pb.UploadEnd{Digest: digest, Size: uint64(n)}}}); err != nil {
		return nil
	}
	return stream.CloseSend()
}
