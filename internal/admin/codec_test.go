package admin

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestEncodeFrameWritesLengthTypeHeaderAndBody(t *testing.T) {
	cmd := &command{
		Code: reqGetMaxOffset, Language: "GO", Version: protocolVersion, Opaque: 42,
		ExtFields: map[string]string{"topic": "t", "queueId": "3"}, Body: []byte("BODY"),
	}
	frame, err := encodeFrame(cmd)
	if err != nil {
		t.Fatal(err)
	}
	total := binary.BigEndian.Uint32(frame)
	if int(total) != len(frame)-4 {
		t.Fatalf("length field %d, want %d", total, len(frame)-4)
	}
	mark := binary.BigEndian.Uint32(frame[4:])
	if typ := mark >> 24; typ != 0 {
		t.Errorf("serialize type %d, want 0 (JSON)", typ)
	}
	hlen := int(mark & 0xFFFFFF)
	header := frame[8 : 8+hlen]
	if body := frame[8+hlen:]; string(body) != "BODY" {
		t.Errorf("body %q, want BODY", body)
	}
	var got map[string]any
	if err := json.Unmarshal(header, &got); err != nil {
		t.Fatalf("header %s: %v", header, err)
	}
	want := map[string]any{
		"code": 30.0, "language": "GO", "version": float64(protocolVersion), "opaque": 42.0, "flag": 0.0,
		"extFields": map[string]any{"topic": "t", "queueId": "3"},
	}
	if gotJSON, wantJSON := mustJSON(t, got), mustJSON(t, want); gotJSON != wantJSON {
		t.Errorf("header %s, want %s", gotJSON, wantJSON)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// javaFrame builds a frame the way the Java server does.
func javaFrame(serializeType byte, header, body string) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(4+len(header)+len(body)))
	binary.Write(&b, binary.BigEndian, uint32(serializeType)<<24|uint32(len(header)))
	b.WriteString(header)
	b.WriteString(body)
	return b.Bytes()
}

func TestReadFrameDecodesAnErrorResponseWithBody(t *testing.T) {
	header := `{"code":17,"flag":1,"language":"JAVA","opaque":8,"remark":"No topic route info in name server for the topic: x","serializeTypeCurrentRPC":"JSON","version":479}`
	cmd, err := readFrame(bytes.NewReader(javaFrame(0, header, `{"a":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Code != 17 || cmd.Opaque != 8 || !strings.HasPrefix(cmd.Remark, "No topic route") || string(cmd.Body) != `{"a":1}` {
		t.Errorf("decoded %+v", cmd)
	}
}

func TestReadFrameRejectsMalformedFrames(t *testing.T) {
	valid := `{"code":0,"flag":1,"opaque":1}`
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"rocketmq serialize type", javaFrame(1, valid, ""), "serialize type 1"},
		{"header longer than frame", func() []byte {
			f := javaFrame(0, valid, "")
			binary.BigEndian.PutUint32(f[4:], uint32(len(valid)+10))
			return f
		}(), "exceeds the frame"},
		{"length below 4", []byte{0, 0, 0, 2, 0, 0}, "out of range"},
		{"length over the limit", []byte{0x7f, 0xff, 0xff, 0xff}, "out of range"},
		{"header not JSON", javaFrame(0, "{not json", ""), "decode header"},
		{"truncated", javaFrame(0, valid, "")[:10], io.ErrUnexpectedEOF.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(tc.frame))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("readFrame: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
