package admin

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Request codes (RequestCode.java of Apache RocketMQ).
const (
	reqQueryConsumerOffset         = 14
	reqUpdateAndCreateTopic        = 17
	reqGetMaxOffset                = 30
	reqGetMinOffset                = 31
	reqGetRouteInfoByTopic         = 105
	reqGetBrokerClusterInfo        = 106
	reqUpdateAndCreateSubscription = 200
	reqGetAllSubscriptionGroup     = 201
	reqGetConsumerConnectionList   = 203
	reqDeleteSubscriptionGroup     = 207
	reqGetConsumeStats             = 208
	reqDeleteTopicInBroker         = 215
	reqDeleteTopicInNamesrv        = 216
	reqGetTopicConfig              = 351
)

const (
	serializeJSON byte = 0
	// protocolVersion is the version a request announces; the one
	// rocketmq-client-go sends (a 4.x client).
	protocolVersion = 317
	// flagResponse marks a response (bit 1 would mark a one-way request).
	flagResponse = 1 << 0
	// maxFrame bounds a frame the client accepts (the Java server's default
	// limit is 16 MiB).
	maxFrame = 64 << 20
)

// command is one remoting command: a request or a response.
type command struct {
	Code      int               `json:"code"`
	Language  string            `json:"language"`
	Version   int               `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int               `json:"flag"`
	Remark    string            `json:"remark,omitempty"`
	ExtFields map[string]string `json:"extFields,omitempty"`
	Body      []byte            `json:"-"`
}

func (c *command) isResponse() bool { return c.Flag&flagResponse != 0 }

// encodeFrame returns the frame of cmd:
//
//	int32 length of what follows | int32 serialize type<<24 | header length | JSON header | body
//
// all big-endian.
func encodeFrame(cmd *command) ([]byte, error) {
	header, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	if len(header) > 0xFFFFFF {
		return nil, fmt.Errorf("encode header: %d bytes is over the 16 MiB limit", len(header))
	}
	n := 4 + len(header) + len(cmd.Body)
	frame := make([]byte, 4, 4+n)
	binary.BigEndian.PutUint32(frame, uint32(n))
	frame = binary.BigEndian.AppendUint32(frame, uint32(serializeJSON)<<24|uint32(len(header)))
	frame = append(frame, header...)
	frame = append(frame, cmd.Body...)
	return frame, nil
}

// readFrame reads one frame from r and decodes it.
func readFrame(r io.Reader) (*command, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > maxFrame {
		return nil, fmt.Errorf("frame length %d out of range", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return decodeFrame(buf)
}

// decodeFrame decodes a frame without its leading length.
func decodeFrame(buf []byte) (*command, error) {
	if len(buf) < 4 {
		return nil, errors.New("frame shorter than its header length")
	}
	mark := binary.BigEndian.Uint32(buf)
	if typ := byte(mark >> 24); typ != serializeJSON {
		return nil, fmt.Errorf("header serialize type %d not supported (only JSON)", typ)
	}
	hlen := int(mark & 0xFFFFFF)
	if hlen > len(buf)-4 {
		return nil, fmt.Errorf("header length %d exceeds the frame (%d bytes)", hlen, len(buf)-4)
	}
	cmd := &command{}
	if err := json.Unmarshal(buf[4:4+hlen], cmd); err != nil {
		return nil, fmt.Errorf("decode header: %w", err)
	}
	if body := buf[4+hlen:]; len(body) > 0 {
		cmd.Body = body
	}
	return cmd, nil
}
