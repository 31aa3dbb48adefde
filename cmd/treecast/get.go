package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/store"
	pb "github.com/treecast/treecast/proto/treecast/v1"
)

func init() { commands = append(commands, newGetCmd) }

func newGetCmd() *cobra.Command {
	var agent, out string
	var force bool
	c := &cobra.Command{
		Use:   "get DIGEST|NAME:VERSION -o FILE|-",
		Short: "Copy an object into a file, fetching it from the cluster if the agent lacks it",
		Long: `Write the object named by DIGEST (sha256:...) or by a tag NAME:VERSION (push --tag) to FILE.

When the agent does not hold the object, it first fetches it from the nearest agent that does
(same rack first), every chunk verified against the manifest; an interrupted get keeps the
chunks already verified, and running it again fetches only the others. A tag the agent does
not know is asked of the other agents.

Every chunk is checked against the manifest and the whole file against the digest. FILE
appears by an atomic rename in its directory only once complete and verified, so a failed get
leaves nothing behind. get never replaces an existing file unless --force, and refuses a
directory, a symbolic link or a device. -o - writes to standard output (a chunk is written
only once verified; a failure still exits non-zero).`,
		Example: `  treecast get sha256:9f86d0... -o app.tar --agent 10.0.0.5:7700
  treecast get app:1.4.2 -o - | tar x`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageErr(errors.New("-o FILE is required (-o - for standard output)"))
			}
			if _, _, err := node.ParseRef(args[0]); err != nil {
				return usageErr(fmt.Errorf("%q: want a digest sha256:<64 hex digits> or a tag NAME:VERSION: %w", args[0], err))
			}
			if out != "-" {
				if err := checkOutput(out, force); err != nil {
					return usageErr(err)
				}
			}
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			pulled, err := client.Pull(c.Context(), &pb.PullRequest{Ref: args[0]})
			if err != nil {
				return refusedAsUsage(fmt.Errorf("get %s: agent %s: %w", args[0], agent, err))
			}
			digest := pulled.GetDigest()
			if h := pulled.GetHolder(); h != "" {
				fmt.Fprintf(c.ErrOrStderr(), "fetched %s from %s (%d bytes; %d chunks were already here)\n", digest, h,
					pulled.GetBytesFetched(), pulled.GetChunksAlreadyHeld())
			}
			stream, err := client.Fetch(c.Context(), &pb.FetchRequest{Digest: digest})
			if err != nil {
				return fmt.Errorf("agent %s: %w", agent, err)
			}
			var n int64
			if out == "-" {
				n, err = receiveTo(stream, digest, c.OutOrStdout())
			} else {
				n, err = receiveObject(stream, digest, out, force)
			}
			if err != nil {
				return fmt.Errorf("get %s: %w", args[0], err)
			}
			if out != "-" {
				fmt.Fprintf(c.ErrOrStderr(), "wrote %s (%d bytes, verified)\n", out, n)
			}
			return nil
		},
	}
	agentFlag(c, &agent)
	c.Flags().StringVarP(&out, "output", "o", "", "file to write, or - for standard output")
	c.Flags().BoolVar(&force, "force", false, "replace FILE if it exists (a regular file only)")
	return c
}

// checkOutput refuses an output path that is a directory, a symbolic link or anything but a
// regular file, and an existing regular file unless force.
func checkOutput(out string, force bool) error {
	fi, err := os.Lstat(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("-o %s: %w", out, err)
	}
	switch m := fi.Mode(); {
	case m&os.ModeSymlink != 0:
		return fmt.Errorf("-o %s is a symbolic link; name the file itself", out)
	case m.IsDir():
		return fmt.Errorf("-o %s is a directory; name a file", out)
	case !m.IsRegular():
		return fmt.Errorf("-o %s is not a regular file (%v); get writes regular files only (-o - for standard output)", out, m.Type())
	case !force:
		return fmt.Errorf("-o %s exists; --force replaces it", out)
	}
	return nil
}

// receiveObject writes a Fetch stream to a temporary file beside out, checking every chunk
// against the manifest and the whole against the digest, then renames it to out (checked
// again just before: nothing but a regular file is replaced, and only with force).
func receiveObject(stream pb.Agent_FetchClient, digest, out string, force bool) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".part-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	defer tmp.Close()
	n, err := receiveTo(stream, digest, tmp)
	if err != nil {
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := checkOutput(out, force); err != nil {
		return 0, err
	}
	return n, os.Rename(tmp.Name(), out)
}

// receiveTo writes a Fetch stream to w, each chunk only once it matches the manifest, and
// checks the whole against the digest at the end.
func receiveTo(stream pb.Agent_FetchClient, digest string, w io.Writer) (int64, error) {
	first, err := stream.Recv()
	if err != nil {
		return 0, err
	}
	m := first.GetManifest()
	if m == nil {
		return 0, errors.New("the agent did not send a manifest first")
	}
	if m.GetDigest() != digest {
		return 0, fmt.Errorf("the agent sent the manifest of %s", m.GetDigest())
	}
	sm, err := store.ManifestFromProto(m)
	if err != nil {
		return 0, err
	}
	whole := sha256.New()
	var n int64
	next := uint64(0)
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		ch := msg.GetChunk()
		if ch == nil {
			continue
		}
		if ch.GetIndex() != next || int(next) >= sm.NumChunks() {
			return 0, fmt.Errorf("chunk %d arrived, expected %d", ch.GetIndex(), next)
		}
		if sm.Alg.Sum(ch.GetData()) != sm.Chunks[next] {
			return 0, fmt.Errorf("chunk %d does not match its hash in the manifest", next)
		}
		if _, err := w.Write(ch.GetData()); err != nil {
			return 0, err
		}
		whole.Write(ch.GetData())
		n += int64(len(ch.GetData()))
		next++
	}
	if n != int64(m.GetSize()) || int(next) != sm.NumChunks() {
		return 0, fmt.Errorf("stream ended after %d of %d bytes", n, m.GetSize())
	}
	if got := "sha256:" + hex.EncodeToString(whole.Sum(nil)); got != digest {
		return 0, fmt.Errorf("the object's digest is %s", got)
	}
	return n, nil
}
