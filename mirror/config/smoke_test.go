package config

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestSmoke(t *testing.T) {
	f, err := Load("testdata/good/full.yaml", WithEnv(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	fmt.Println(string(b))
}
