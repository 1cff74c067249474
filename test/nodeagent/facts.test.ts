import { expect } from "chai";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { collectNodeFacts, diskMounts, parseMounts, readDisks, agentVersion } from "../../nodeagent/facts";

const MOUNTS = [
  "proc /proc proc rw,relatime 0 0",
  "sysfs /sys sysfs rw,relatime 0 0",
  "overlay / overlay rw,relatime,lowerdir=/a,upperdir=/b 0 0",
  "/dev/vda1 /srv/data ext4 rw,relatime 0 0",
  "/dev/vda1 /srv/data/bind ext4 rw,relatime 0 0",
  "/dev/vdb /mnt/my\\040disk xfs ro,relatime 0 0",
  "tmpfs /dev/shm tmpfs rw 0 0",
  "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0",
  "server:/export /mnt/nfs nfs4 rw 0 0",
  "",
].join("\n");

describe("nodeagent/facts", () => {
  it("parses /proc/mounts, decodes escapes, skips pseudo filesystems and reports each device once", () => {
    const all = parseMounts(MOUNTS);
    expect(all).to.have.length(9);
    expect(all[5]).to.deep.equal({ device: "/dev/vdb", mount: "/mnt/my disk", fsType: "xfs", options: ["ro", "relatime"] });
    expect(diskMounts(all).map((m) => m.mount)).to.deep.equal(["/", "/mnt/my disk", "/mnt/nfs", "/srv/data"]);
  });

  it("reads size and free space of each real mount with statfs, leaving out what cannot be read", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sgrid-facts-"));
    try {
      const file = path.join(tmp, "mounts");
      fs.writeFileSync(file, `/dev/fake ${tmp} ext4 rw 0 0\n/dev/gone ${tmp}/does-not-exist ext4 ro 0 0\nproc /proc proc rw 0 0\n`);
      const disks = await readDisks(file);
      const st = fs.statfsSync(tmp);
      expect(disks).to.have.length(1);
      expect(disks[0]).to.include({ mount: tmp, device: "/dev/fake", fsType: "ext4", readOnly: false, totalBytes: st.blocks * st.bsize });
      expect(disks[0].availableBytes).to.be.at.most(disks[0].freeBytes);
      expect(disks[0].freeBytes).to.be.at.most(disks[0].totalBytes);
      expect(await readDisks(path.join(tmp, "no-such-file"))).to.deep.equal([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("collects this machine's facts", async () => {
    const f = await collectNodeFacts();
    const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, "../../../package.json"), "utf8")) as { version: string };
    expect(f.agentVersion).to.equal(pkg.version);
    expect(agentVersion()).to.equal(pkg.version);
    expect(f.hostname).to.equal(os.hostname());
    expect(f.kernel).to.equal(os.release());
    expect(f.cpuCount).to.equal(os.cpus().length).and.to.be.greaterThan(0);
    expect(f.cpuAvailable).to.be.within(1, f.cpuCount);
    expect(f.loadAvg).to.have.length(3);
    expect(f.memory.totalBytes).to.equal(os.totalmem());
    expect(f.memory.availableBytes).to.be.within(1, f.memory.totalBytes);
    expect(f.memory.freeBytes).to.be.within(1, f.memory.totalBytes);
    if (process.platform === "linux") {
      expect(f.bootId).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(f.disks.length).to.be.greaterThan(0);
      for (const d of f.disks) expect(d.totalBytes).to.be.greaterThan(0);
      expect(f.disks.map((d) => d.fsType)).to.not.include.members(["proc", "sysfs", "cgroup", "devpts"]);
    }
  });
});
