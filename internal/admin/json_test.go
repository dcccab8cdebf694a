package admin

import (
	"strings"
	"testing"
)

func TestStandardJSONRewritesFastjsonKeys(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"standard JSON is kept", `{"a":[1,2.5,-3e2,true,false,null,"s"],"b":{}}`, `{"a":[1,2.5,-3e2,true,false,null,"s"],"b":{}}`},
		{"whitespace is dropped", " {\n\t\"a\" : [ 1 , 2 ] ,\r\n \"b\":{ } } ", `{"a":[1,2],"b":{}}`},
		{"number keys", `{0:"127.0.0.1:10911",1:"127.0.0.1:10921"}`, `{"0":"127.0.0.1:10911","1":"127.0.0.1:10921"}`},
		{"negative and long keys", `{-1:"a",9007199254740993:"b"}`, `{"-1":"a","9007199254740993":"b"}`},
		{"bare word keys", `{true:1,name:2,null:3}`, `{"true":1,"name":2,"null":3}`},
		{
			"object keys",
			`{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{"brokerOffset":5},{"brokerName":"b","queueId":1,"topic":"t"}:{"brokerOffset":6}}}`,
			`{"offsetTable":{"{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"t\"}":{"brokerOffset":5},"{\"brokerName\":\"b\",\"queueId\":1,\"topic\":\"t\"}":{"brokerOffset":6}}}`,
		},
		{"object key with whitespace and nesting", `{ { "a" : { 1 : [ 2 ] } } : 0 }`, `{"{\"a\":{\"1\":[2]}}":0}`},
		{"array key", `{[1,"x"]:0}`, `{"[1,\"x\"]":0}`},
		{"escapes in an object key", `{{"t":"q\"uo\\te"}:0}`, `{"{\"t\":\"q\\\"uo\\\\te\"}":0}`},
		{"braces and colons inside strings", `{"a":"{0:\"}[,]:"}`, `{"a":"{0:\"}[,]:"}`},
		{"unicode", `{"主题":"é\u00e9"}`, `{"主题":"é\u00e9"}`},
		{"NaN and infinities become null", `{"tps":NaN,"x":[Infinity,-Infinity]}`, `{"tps":null,"x":[null,null]}`},
		{"trailing commas", `{"a":[1,2,],"b":3,}`, `{"a":[1,2],"b":3}`},
		{"top-level scalar", ` 42 `, `42`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := standardJSON([]byte(tc.in))
			if err != nil {
				t.Fatalf("standardJSON(%s): %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Errorf("standardJSON(%s)\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestStandardJSONRejectsMalformedInput(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", ``, "unexpected end"},
		{"unterminated string", `{"a":"b`, "unterminated string"},
		{"missing colon", `{"a" 1}`, "want ':'"},
		{"missing comma", `{"a":1 "b":2}`, "want ',' or '}'"},
		{"bare word value", `{"a":yes}`, `bare word "yes"`},
		{"bad number", `{"a":1.2.3}`, `bare word "1.2.3"`},
		{"unclosed array", `[1,2`, "unexpected end"},
		{"garbage after the value", `{} x`, "after the top-level value"},
		{"a lone comma", `[,]`, "unexpected ','"},
		{"too deep", strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1), "nested deeper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := standardJSON([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("standardJSON(%.40s): %v, want an error containing %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestDecodeJSONDecodesNumberKeysIntoIntegerMaps(t *testing.T) {
	var v struct {
		Addrs map[int64]string `json:"brokerAddrs"`
	}
	if err := decodeJSON([]byte(`{"brokerAddrs":{0:"m",2:"s"}}`), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Addrs) != 2 || v.Addrs[0] != "m" || v.Addrs[2] != "s" {
		t.Errorf("decoded %v", v.Addrs)
	}
}
