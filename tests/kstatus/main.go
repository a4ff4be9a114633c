// Command kstatus computes the kstatus verdict of Kubernetes objects with the
// real library, sigs.k8s.io/cli-utils/pkg/kstatus/status, the one Flux's
// `wait: true` and `kubectl wait`-style tools use.
//
// It reads one object (JSON or YAML, e.g. `kubectl get -o json` output) on
// standard input and prints one JSON line:
//
//	{"status":"Current","message":"Resource is current"}
//
// A List (`kubectl get authpolicies -o json`) prints a JSON array, one entry
// per item, each with its name. Exit status 2 means the input was unreadable.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// verdict is what the program prints for one object.
type verdict struct {
	Name    string `json:"name,omitempty"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func compute(obj map[string]interface{}) (verdict, error) {
	u := &unstructured.Unstructured{Object: obj}
	res, err := status.Compute(u)
	if err != nil {
		return verdict{}, err
	}
	return verdict{Status: res.Status.String(), Message: res.Message}, nil
}

func run(in io.Reader, out io.Writer) error {
	raw, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	doc, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("parsing input: %w", err)
	}
	// Integers stay int64, as the apiserver's decoder keeps them.
	var obj map[string]interface{}
	if err := utiljson.Unmarshal(doc, &obj); err != nil || obj == nil {
		return fmt.Errorf("input is not one Kubernetes object")
	}
	enc := json.NewEncoder(out)
	if items, ok := obj["items"].([]interface{}); ok {
		all := make([]verdict, 0, len(items))
		for i, it := range items {
			m, ok := it.(map[string]interface{})
			if !ok {
				return fmt.Errorf("items[%d] is not an object", i)
			}
			v, err := compute(m)
			if err != nil {
				return fmt.Errorf("items[%d]: %w", i, err)
			}
			v.Name = (&unstructured.Unstructured{Object: m}).GetName()
			all = append(all, v)
		}
		return enc.Encode(all)
	}
	v, err := compute(obj)
	if err != nil {
		return err
	}
	return enc.Encode(v)
}

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: kstatus < object.json   (prints {\"status\":...,\"message\":...})")
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
}
