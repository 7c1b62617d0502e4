//go:build !unix

package bench

import (
	"runtime"
	"time"
)

func cpuTime() time.Duration { return 0 }

func peakRSS() int64 { return 0 }

func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

func currentRSS() int64 { return 0 }
