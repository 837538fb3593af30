package wsproto

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDecodeRequests(t *testing.T) {
	tests := []struct {
		in    string
		check func(t *testing.T, r *Request)
	}{
		{`{"type":"ping","id":"1"}`, func(t *testing.T, r *Request) {
			if r.Type != TypePing || r.ID != "1" {
				t.Fatalf("%+v", r)
			}
		}},
		{`{"type":"auth","token":"abc"}`, func(t *testing.T, r *Request) {
			if r.Token != "abc" {
				t.Fatalf("%+v", r)
			}
		}},
		{`{"type":"auth","username":"u","password":""}`, func(t *testing.T, r *Request) {
			if r.Username != "u" || r.Password != "" {
				t.Fatalf("%+v", r)
			}
		}},
		{`{"type":"send","to":"bob","data":{"a":[1,2]}}`, func(t *testing.T, r *Request) {
			if r.To != "bob" || string(r.Data) != `{"a":[1,2]}` {
				t.Fatalf("%+v", r)
			}
		}},
		{`{"type":"send","group":"g","data":null}`, func(t *testing.T, r *Request) {
			if r.Group != "g" || string(r.Data) != "null" {
				t.Fatalf("%+v %q", r, r.Data)
			}
		}},
		{`{"type":"subscribe","topic":"t"}`, func(t *testing.T, r *Request) {
			if r.Topic != "t" || r.From != "latest" || r.Partitions != nil {
				t.Fatalf("%+v", r)
			}
		}},
		{`{"type":"subscribe","topic":"t","partitions":[2,0],"from":"offset","offset":5,"offsets":{"2":9},"binary":true}`, func(t *testing.T, r *Request) {
			if !slices.Equal(r.Partitions, []int32{2, 0}) || r.Offset != 5 || r.Offsets[2] != 9 || !r.Binary {
				t.Fatalf("%+v", r)
			}
		}},
		{`{"type":"subscribe","queue":"q","vhost":"v"}`, func(t *testing.T, r *Request) {
			if r.Queue != "q" || r.Vhost != "v" || r.Prefetch != 100 {
				t.Fatalf("%+v", r)
			}
		}},
		{`{"type":"nack","sub":"s","tag":3}`, func(t *testing.T, r *Request) {
			if !r.Requeue || r.Multiple || r.Tag != 3 {
				t.Fatalf("%+v", r)
			}
		}},
		{`{"type":"nack","sub":"s","tag":3,"requeue":false,"multiple":true}`, func(t *testing.T, r *Request) {
			if r.Requeue || !r.Multiple {
				t.Fatalf("%+v", r)
			}
		}},
		{`{"type":"produce","topic":"t","key_b64":"AP8=","value":"v","headers":[{"key":"h","value_b64":"AQ=="},{"key":"n"}]}`, func(t *testing.T, r *Request) {
			if string(r.Key) != "\x00\xff" || string(r.Value) != "v" || r.Partition != -1 {
				t.Fatalf("%+v", r)
			}
			if len(r.Headers) != 2 || string(r.Headers[0].Value) != "\x01" || r.Headers[1].Value != nil {
				t.Fatalf("headers %+v", r.Headers)
			}
		}},
		{`{"type":"produce","topic":"t"}`, func(t *testing.T, r *Request) {
			if r.Value != nil || r.Key != nil {
				t.Fatalf("a produce without value must carry a null value: %+v", r)
			}
		}},
		{`{"type":"publish","exchange":"","routing_key":"q","properties":{"delivery_mode":2,"headers":{"n":1}}}`, func(t *testing.T, r *Request) {
			if r.Body == nil || len(r.Body) != 0 || r.Properties.DeliveryMode != 2 || r.RoutingKey != "q" {
				t.Fatalf("%+v", r)
			}
		}},
	}
	for _, tt := range tests {
		r, err := Decode([]byte(tt.in))
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		tt.check(t, r)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{``, "malformed"},
		{`[]`, "malformed"},
		{`{"type":"ping"} {}`, "more than one"},
		{`{"id":"x"}`, "missing type"},
		{`{"type":"nope"}`, "unknown type"},
		{`{"type":"ping","extra":1}`, "unknown field"},
		{`{"type":"auth"}`, "auth"},
		{`{"type":"auth","token":"a","username":"u","password":"p"}`, "not both"},
		{`{"type":"send","data":1}`, "either"},
		{`{"type":"send","to":"a","group":"b","data":1}`, "either"},
		{`{"type":"send","to":"a"}`, "missing data"},
		{`{"type":"join","group":""}`, "empty"},
		{`{"type":"join","group":"` + strings.Repeat("g", 256) + `"}`, "longer"},
		{`{"type":"subscribe"}`, "either"},
		{`{"type":"subscribe","topic":"t","from":"offset"}`, "needs a non-negative offset"},
		{`{"type":"subscribe","topic":"t","from":"never"}`, "give earliest"},
		{`{"type":"subscribe","topic":"t","offset":3}`, "needs from offset"},
		{`{"type":"subscribe","topic":"t","partitions":[-1]}`, "negative"},
		{`{"type":"subscribe","topic":"t","offsets":{"x":1}}`, "not a partition"},
		{`{"type":"subscribe","topic":"t","prefetch":1}`, "belong to queue"},
		{`{"type":"subscribe","queue":"q","prefetch":0}`, "prefetch"},
		{`{"type":"subscribe","queue":"q","from":"earliest"}`, "belong to topic"},
		{`{"type":"ack","sub":"s"}`, "missing tag"},
		{`{"type":"ack","sub":"s","tag":0}`, "missing tag"},
		{`{"type":"ack","sub":"s","tag":1,"requeue":true}`, "belongs to nack"},
		{`{"type":"produce","value":"v"}`, "missing topic"},
		{`{"type":"produce","topic":"t","value":"v","value_b64":"dg=="}`, "not more than one"},
		{`{"type":"produce","topic":"t","value_b64":"***"}`, "not base64"},
		{`{"type":"produce","topic":"t","partition":-2}`, "partition"},
		{`{"type":"produce","topic":"t","headers":[{"value":"x"}]}`, "no key"},
		{`{"type":"publish","routing_key":"x"}`, "missing exchange"},
		{`{"type":"publish","exchange":"","properties":{"delivery_mode":3}}`, "delivery_mode"},
		{`{"type":"publish","exchange":"","properties":{"colour":"red"}}`, "unknown field"},
		{`{"type":"ping","id":"` + strings.Repeat("i", 129) + `"}`, "id is longer"},
	} {
		_, err := Decode([]byte(tt.in))
		var pe *Error
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%.60q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
	// The id of a request that decodes but is wrong comes back for the
	// error reply.
	_, err := Decode([]byte(`{"type":"join","id":"q7"}`))
	var pe *Error
	if !errors.As(err, &pe) || pe.ID != "q7" {
		t.Fatalf("error %v does not carry the request id", err)
	}
}

func binaryFrame(env string, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(env)))
	b = append(b, env...)
	return append(b, payload...)
}

func TestDecodeBinary(t *testing.T) {
	r, err := DecodeBinary(binaryFrame(`{"type":"produce","topic":"t","key":"k"}`, []byte{0, 1, 2}))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Value) != "\x00\x01\x02" || string(r.Key) != "k" {
		t.Fatalf("%+v", r)
	}
	r, err = DecodeBinary(binaryFrame(`{"type":"publish","exchange":"x"}`, []byte("body")))
	if err != nil || string(r.Body) != "body" {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range [][]byte{
		nil,
		{0, 0},
		{0, 0, 0, 9, '{', '}'},
		binaryFrame(`{"type":"ping"}`, nil),
		binaryFrame(`{"type":"produce","topic":"t","value":"v"}`, []byte("p")),
	} {
		if _, err := DecodeBinary(bad); err == nil {
			t.Errorf("DecodeBinary(%q) accepted", bad)
		}
	}
}

func TestEncodeFrames(t *testing.T) {
	f := EncodeRecord(Record{Sub: "s", Topic: "t", Partition: 1, Offset: 2, Key: []byte{0xff}, Value: []byte("v"),
		Headers: []Header{{Key: "h", Value: []byte("x")}, {Key: "n"}}}, false)
	var m map[string]any
	if err := json.Unmarshal(f.Data, &m); err != nil || f.Binary {
		t.Fatal(err)
	}
	if m["key_b64"] != "/w==" || m["value"] != "v" || m["null_value"] != nil {
		t.Fatalf("record %s", f.Data)
	}
	f = EncodeRecord(Record{Sub: "s", Topic: "t"}, true)
	if !f.Binary {
		t.Fatal("binary record is not binary")
	}
	n := binary.BigEndian.Uint32(f.Data)
	if err := json.Unmarshal(f.Data[4:4+n], &m); err != nil || m["null_value"] != true || len(f.Data) != int(4+n) {
		t.Fatalf("binary record %q", f.Data)
	}
	f = EncodeDelivery(Delivery{Sub: "s", Tag: 1, Body: nil}, false)
	if !strings.Contains(string(f.Data), `"body":""`) {
		t.Fatalf("empty body %s", f.Data)
	}
}

// FuzzDecode feeds arbitrary text and binary frames to the decoder: it must
// never panic, and whatever it accepts has a known type and fields within
// the documented limits.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping","id":"1"}`,
		`{"type":"auth","token":"abc"}`,
		`{"type":"send","to":"bob","data":{"a":[1,2]}}`,
		`{"type":"subscribe","topic":"t","partitions":[2,0],"from":"offset","offset":5,"offsets":{"2":9},"binary":true}`,
		`{"type":"subscribe","queue":"q","prefetch":5}`,
		`{"type":"ack","sub":"s","tag":3,"multiple":true}`,
		`{"type":"produce","topic":"t","key_b64":"AP8=","value":"v","headers":[{"key":"h","value_b64":"AQ=="}]}`,
		`{"type":"publish","exchange":"","routing_key":"q","properties":{"delivery_mode":2,"headers":{"n":{"m":[1,"x",null,true,1.5]}}}}`,
	} {
		f.Add([]byte(s), false)
		f.Add(binaryFrame(s, []byte("payload")), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, isBinary bool) {
		var r *Request
		var err error
		if isBinary {
			r, err = DecodeBinary(data)
		} else {
			r, err = Decode(data)
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		known := []string{TypeAuth, TypePing, TypeSend, TypeBroadcast, TypeJoin, TypeLeave, TypePresence,
			TypeSubscribe, TypeUnsubscribe, TypeAck, TypeNack, TypeProduce, TypePublish}
		if !slices.Contains(known, r.Type) {
			t.Fatalf("accepted unknown type %q", r.Type)
		}
		if len(r.ID) > MaxIDLen || len(r.Group) > MaxNameLen || len(r.Topic) > MaxNameLen || len(r.Queue) > MaxNameLen {
			t.Fatalf("accepted a field over its limit: %+v", r)
		}
		if r.Type == TypeSubscribe && r.Queue == "" && r.Topic == "" {
			t.Fatal("accepted a subscription to nothing")
		}
		if r.Type == TypeProduce && r.Partition < -1 {
			t.Fatalf("accepted partition %d", r.Partition)
		}
		if r.Type == TypePublish {
			// Converting the properties must not panic either; an error
			// is the client's.
			_, _ = r.Properties.ToWire()
		}
	})
}
