package broker

import "testing"

func TestMurmur2KafkaVectors(t *testing.T) {
	// Apache Kafka's UtilsTest.testMurmur2.
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := Murmur2([]byte(key)); got != want {
			t.Errorf("Murmur2(%q) = %d, want %d", key, got, want)
		}
	}
	// toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16.
	if got := PartitionForKey([]byte("foobar"), 50); got != 16 {
		t.Errorf("PartitionForKey(foobar, 50) = %d, want 16", got)
	}
}
