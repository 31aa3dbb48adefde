package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// UFTP is IP multicast with NAK-based repair: uftpd (in the foreground) in every receiver,
// then `uftp` in the source sends the object to the multicast group of the closed group of
// receivers (-H, by client ID) at a fixed rate (-C none -R), a fraction of the link rate.
// It is timed from the sender's start to its exit, which comes once every receiver has
// acknowledged the file (or has been given up on). Debian package uftp.
type UFTP struct {
	// RateFraction is the sending rate as a fraction of the link rate (0: 0.9). uftp's rate
	// counts its payload; its headers add about 5% on the wire.
	RateFraction float64
}

// Name is "uftp (IP multicast)".
func (u *UFTP) Name() string { return "uftp (IP multicast)" }

// Tools are uftp and uftpd.
func (u *UFTP) Tools() []Tool {
	return []Tool{{Binary: "uftp", Package: "uftp"}, {Binary: "uftpd", Package: "uftp"}}
}

// Run starts the receivers' daemons and sends once.
func (u *UFTP) Run(ctx context.Context, e *Env) (map[int]string, error) {
	hosts := e.Hosts()
	frac := u.RateFraction
	if frac == 0 {
		frac = 0.9
	}
	// uftp sends a file under the name it is given; a relative name (the run's directory is
	// the sender's working directory) lands in each receiver's destination directory.
	if err := linkOrCopy(e.object, filepath.Join(e.dir, "object")); err != nil {
		return nil, err
	}
	copies := map[int]string{}
	var ids []string
	var daemons []*proc
	for i := 1; i < len(hosts); i++ {
		dest := filepath.Join(e.dir, "uftp", hosts[i].Name)
		if err := mkdir(dest); err != nil {
			return nil, err
		}
		a := hosts[i].Addr.As4()
		id := fmt.Sprintf("0x%02x%02x%02x%02x", a[0], a[1], a[2], a[3])
		ids = append(ids, id)
		p, err := e.exec(ctx, i, "uftpd", "uftpd", "-d", "-U", id, "-I", "eth0", "-D", dest)
		if err != nil {
			return nil, err
		}
		daemons = append(daemons, p)
		copies[i] = filepath.Join(dest, "object")
	}
	for _, p := range daemons {
		if err := p.waitListening(ctx, "udp", 1044); err != nil {
			return nil, err
		}
	}
	kbps := strconv.FormatFloat(e.cfg.Rate*frac/1000, 'f', 0, 64)
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	out, err := e.run(ctx, 0, "uftp", "uftp", "-I", "eth0", "-C", "none", "-R", kbps,
		"-H", strings.Join(ids, ","), "object")
	if serr := e.Stop(ctx); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return copies, err
	}
	_ = out
	return copies, nil
}
