package membership

import (
	"encoding/json"
	"testing"
)

func TestDecodeMeta(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{`{"g":"127.0.0.1:5000","l":{"rack":"r1"},"c":["web"]}`, true},
		{`{"g":"[::1]:5000"}`, true},
		{`{"g":"nohost"}`, false},
		{`{"g":"h:99999"}`, false},
		{`{}`, false},
		{`not json`, false},
		{``, false},
	}
	for _, c := range cases {
		m, err := DecodeMeta([]byte(c.in))
		if (err == nil) != c.ok {
			t.Errorf("DecodeMeta(%q) = %+v, %v; want ok=%v", c.in, m, err, c.ok)
		}
	}
}

// FuzzDecodeMeta: any bytes give a metadata with a valid address or an error, never a panic,
// and what decodes re-encodes to something that decodes the same.
func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"g":"127.0.0.1:5000","l":{"rack":"r1"},"c":["web"]}`))
	f.Add([]byte(`{"g":":0"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		if CheckHostPort(m.Addr) != nil {
			t.Fatalf("accepted address %q", m.Addr)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeMeta(again)
		if err != nil || m2.Addr != m.Addr || len(m2.Labels) != len(m.Labels) || len(m2.Channels) != len(m.Channels) {
			t.Fatalf("round trip %+v -> %+v, %v", m, m2, err)
		}
	})
}
