// A camera record of GET /api/cameras/{id} as matrices on the globe: the same model as
// twin/cameras/camera.py. Image: u right, v down, px, (0, 0) the top-left corner. Camera axes:
// x = image right, y = image down, z = optical axis. Orientation in degrees: heading clockwise
// from north, pitch above the horizon (negative looks down), roll about the optical axis
// (positive turns the camera clockwise as seen from behind it). Lens distortion: OpenCV's
// (k1, k2, p1, p2, k3). Positions: ECEF metres; `height` is the optical centre's WGS84
// ellipsoidal height.
const Cesium = window.Cesium;

const RAD = Math.PI / 180;

/** Camera → ENU rotation: the camera's right, down and forward axes as ENU unit vectors. */
export function cameraAxesEnu(heading, pitch, roll) {
  const [h, p, r] = [heading * RAD, pitch * RAD, roll * RAD];
  const forward = [Math.sin(h) * Math.cos(p), Math.cos(h) * Math.cos(p), Math.sin(p)];
  const right0 = [Math.cos(h), -Math.sin(h), 0];
  const up0 = [
    right0[1] * forward[2] - right0[2] * forward[1],
    right0[2] * forward[0] - right0[0] * forward[2],
    right0[0] * forward[1] - right0[1] * forward[0],
  ];
  const right = right0.map((c, i) => c * Math.cos(r) - up0[i] * Math.sin(r));
  const up = up0.map((c, i) => c * Math.cos(r) + right0[i] * Math.sin(r));
  return { right, down: up.map((c) => -c), forward };
}

/** The optical centre of `record` (ECEF m). */
export function cameraPosition(record) {
  return Cesium.Cartesian3.fromDegrees(record.lon, record.lat, record.height);
}

/** Camera → ECEF rigid transform (Matrix4): columns right, down, forward, optical centre. */
export function cameraToWorld(record) {
  const position = cameraPosition(record);
  const enu = Cesium.Transforms.eastNorthUpToFixedFrame(position);
  const rotEnu = Cesium.Matrix4.getMatrix3(enu, new Cesium.Matrix3());
  const { right, down, forward } = cameraAxesEnu(record.heading, record.pitch, record.roll || 0);
  // Columns of the camera → ENU rotation (Matrix3 takes row-major arguments).
  const rotCam = new Cesium.Matrix3(
    right[0], down[0], forward[0],
    right[1], down[1], forward[1],
    right[2], down[2], forward[2],
  );
  const rotation = Cesium.Matrix3.multiply(rotEnu, rotCam, new Cesium.Matrix3());
  return Cesium.Matrix4.fromRotationTranslation(rotation, position, new Cesium.Matrix4());
}

/** ECEF → camera frame (Matrix4). */
export function worldToCamera(record) {
  return Cesium.Matrix4.inverseTransformation(cameraToWorld(record), new Cesium.Matrix4());
}

/** Ideal normalised image coordinates → distorted ones (OpenCV model), as camera.py. */
export function distort(record, x, y) {
  const [k1, k2, p1, p2, k3] = record.distortion || [0, 0, 0, 0, 0];
  const r2 = x * x + y * y;
  const radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3));
  return [
    x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
    y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y,
  ];
}

/**
 * Project ECEF points into the image of `record`.
 * @param {any} record camera record (pose, fx, fy, cx, cy, distortion, image size)
 * @param {Cesium.Cartesian3[]} points ECEF metres
 * @returns {{u: number, v: number, depth: number, inImage: boolean}[]} px; depth along the
 *   optical axis in metres (<= 0 behind the camera, u and v NaN then)
 */
export function projectPoints(record, points) {
  const w2c = worldToCamera(record);
  const scratch = new Cesium.Cartesian3();
  const limX = record.image_width / record.fx;
  const limY = record.image_height / record.fy;
  return points.map((point) => {
    const c = Cesium.Matrix4.multiplyByPoint(w2c, point, scratch);
    if (!(c.z > 0)) return { u: NaN, v: NaN, depth: c.z, inImage: false };
    let x = c.x / c.z;
    let y = c.y / c.z;
    if (Math.abs(x) > limX || Math.abs(y) > limY) return { u: NaN, v: NaN, depth: c.z, inImage: false };
    [x, y] = distort(record, x, y);
    const u = record.cx + record.fx * x;
    const v = record.cy + record.fy * y;
    const inImage = u >= 0 && u <= record.image_width && v >= 0 && v <= record.image_height;
    return { u, v, depth: c.z, inImage };
  });
}

/**
 * The frustum of `record` cut at `depth` metres along the optical axis (distortion ignored):
 * the optical centre and the four image corners (top-left, top-right, bottom-right,
 * bottom-left), ECEF metres.
 */
export function frustumCorners(record, depth) {
  const c2w = cameraToWorld(record);
  const apex = cameraPosition(record);
  const pixels = [
    [0, 0],
    [record.image_width, 0],
    [record.image_width, record.image_height],
    [0, record.image_height],
  ];
  const corners = pixels.map(([u, v]) => {
    const local = new Cesium.Cartesian3(
      ((u - record.cx) / record.fx) * depth,
      ((v - record.cy) / record.fy) * depth,
      depth,
    );
    return Cesium.Matrix4.multiplyByPoint(c2w, local, new Cesium.Cartesian3());
  });
  return { apex, corners };
}

/**
 * How deep to draw a frustum (m along the optical axis): to where the optical axis meets the
 * camera's ground, between `min` and `max`; `max` / 2 when it looks at or above the horizon.
 */
export function frustumDepth(record, { min = 25, max = 600 } = {}) {
  const mount = record.height - (record.ground_height ?? record.height);
  const down = -Math.sin((record.pitch || 0) * RAD);
  if (down < 0.02 || mount <= 0) return max / 2;
  return Math.min(max, Math.max(min, mount / down));
}
