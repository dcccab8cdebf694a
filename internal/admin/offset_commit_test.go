package admin

import "testing"

func TestParseGroupConfigs(t *testing.T) {
	groups, err := parseGroupConfigs(readTestdata(t, "subscription_groups.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tools *GroupConfig
	for i := range groups {
		if i > 0 && groups[i-1].Name >= groups[i].Name {
			t.Fatalf("not sorted: %q before %q", groups[i-1].Name, groups[i].Name)
		}
		if groups[i].Name == "TOOLS_CONSUMER" {
			tools = &groups[i]
		}
	}
	want := GroupConfig{Name: "TOOLS_CONSUMER", ConsumeEnable: true, ConsumeBroadcastEnable: true, RetryMaxTimes: 16}
	if tools == nil || *tools != want {
		t.Fatalf("TOOLS_CONSUMER = %+v, want %+v", tools, want)
	}
}
