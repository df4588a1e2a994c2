// Video projection: a camera's newest frame painted onto the 3D model (terrain and buildings)
// as a post-process stage. For each screen pixel the scene's depth gives its eye-space
// position; one matrix (scene eye → video camera frame, composed on the CPU in float64 every
// frame, so nothing loses precision to ECEF magnitudes in float32) takes it into the video
// camera, where the pinhole model with OpenCV distortion gives the frame's pixel. Surfaces
// facing away from the video camera are left alone; surfaces hidden behind others (as seen
// from the video camera) are not yet tested and get the frame too.
//
// The frame is a texture this module owns, updated in place (`copyFrom`) between frames and
// handed to the stage by a uniform function. (Assigning the canvas to the stage's uniform
// again for each new frame made Cesium drop the old texture at once and create the new one
// only at the next update, so the frame in between drew with no texture: "Cannot read
// properties of undefined (reading '_target')", and rendering stopped for good.)
import { cameraPosition, worldToCamera } from "./cameramodel.js";

const Cesium = window.Cesium;

const FRAGMENT_SHADER = `
uniform sampler2D colorTexture;
uniform sampler2D depthTexture;
uniform sampler2D video;
uniform mat4 eyeToCamera;
uniform vec3 cameraEye;
uniform vec4 intrinsics;
uniform vec2 imageSize;
uniform vec4 distortion;
uniform float distortionK3;
uniform float opacity;
uniform float maxRange;
in vec2 v_textureCoordinates;

void main() {
  vec4 colour = texture(colorTexture, v_textureCoordinates);
  out_FragColor = colour;
  float depth = texture(depthTexture, v_textureCoordinates).r;
  if (depth >= 1.0 || depth <= 0.0) return;
  vec4 eye = czm_windowToEyeCoordinates(gl_FragCoord.xy, depth);
  vec3 position = eye.xyz / eye.w;
  vec3 normal = normalize(cross(dFdx(position), dFdy(position)));
  vec3 toCamera = cameraEye - position;
  if (abs(dot(normal, normalize(toCamera))) < 0.02) return;
  if (dot(normal, toCamera) * dot(normal, -position) < 0.0) return;
  vec4 c = eyeToCamera * vec4(position, 1.0);
  if (c.z <= 0.0 || length(c.xyz) > maxRange) return;
  vec2 n = c.xy / c.z;
  if (abs(n.x) * intrinsics.x > imageSize.x || abs(n.y) * intrinsics.y > imageSize.y) return;
  float r2 = dot(n, n);
  float radial = 1.0 + r2 * (distortion.x + r2 * (distortion.y + r2 * distortionK3));
  vec2 d = vec2(
    n.x * radial + 2.0 * distortion.z * n.x * n.y + distortion.w * (r2 + 2.0 * n.x * n.x),
    n.y * radial + distortion.z * (r2 + 2.0 * n.y * n.y) + 2.0 * distortion.w * n.x * n.y);
  vec2 pixel = intrinsics.xy * d + intrinsics.zw;
  vec2 st = pixel / imageSize;
  if (any(lessThan(st, vec2(0.0))) || any(greaterThan(st, vec2(1.0)))) return;
  vec4 frame = texture(video, vec2(st.x, 1.0 - st.y));
  out_FragColor = vec4(mix(colour.rgb, frame.rgb, opacity), colour.a);
}
`;

/** The frames of some cameras projected onto the scene, one post-process stage each. */
export class VideoProjection {
  /**
   * @param {Cesium.Viewer} viewer
   * @param {{opacity?: number, maxRange?: number}} options opacity 0–1 of the frame over the
   *   model; maxRange (m) from the video camera beyond which nothing is painted
   */
  constructor(viewer, { opacity = 0.9, maxRange = 3000 } = {}) {
    this.viewer = viewer;
    this.opacity = opacity;
    this.maxRange = maxRange;
    this.stages = new Map();
  }

  /** Is `cameraId`'s frame being projected? */
  has(cameraId) {
    return this.stages.has(cameraId);
  }

  get ids() {
    return [...this.stages.keys()];
  }

  /**
   * Project `canvas` (the camera's frame) with the camera model `record`; call again with a
   * new record when the camera moves, and `refresh` when the canvas was redrawn.
   */
  show(record, canvas) {
    let entry = this.stages.get(record.id);
    if (!entry) {
      entry = { record, w2c: worldToCamera(record), position: cameraPosition(record), canvas, texture: null };
      this.upload(entry);
      const scratch = {
        matrix: new Cesium.Matrix4(),
        eye: new Cesium.Cartesian3(),
        intrinsics: new Cesium.Cartesian4(),
        size: new Cesium.Cartesian2(),
        distortion: new Cesium.Cartesian4(),
      };
      const camera = this.viewer.camera;
      entry.stage = new Cesium.PostProcessStage({
        name: `video-projection-${record.id}`,
        fragmentShader: FRAGMENT_SHADER,
        uniforms: {
          video: () => entry.texture,
          eyeToCamera: () =>
            Cesium.Matrix4.multiply(entry.w2c, camera.inverseViewMatrix, scratch.matrix),
          cameraEye: () => Cesium.Matrix4.multiplyByPoint(camera.viewMatrix, entry.position, scratch.eye),
          intrinsics: () => {
            const r = entry.record;
            return Cesium.Cartesian4.fromElements(r.fx, r.fy, r.cx, r.cy, scratch.intrinsics);
          },
          imageSize: () =>
            Cesium.Cartesian2.fromElements(entry.record.image_width, entry.record.image_height, scratch.size),
          distortion: () => {
            const [k1, k2, p1, p2] = entry.record.distortion || [0, 0, 0, 0];
            return Cesium.Cartesian4.fromElements(k1, k2, p1, p2, scratch.distortion);
          },
          distortionK3: () => (entry.record.distortion || [0, 0, 0, 0, 0])[4] || 0,
          opacity: () => this.opacity,
          maxRange: () => this.maxRange,
        },
      });
      this.viewer.scene.postProcessStages.add(entry.stage);
      this.stages.set(record.id, entry);
    } else {
      entry.record = record;
      entry.w2c = worldToCamera(record);
      entry.position = cameraPosition(record);
      if (entry.canvas !== canvas) {
        entry.canvas = canvas;
        this.upload(entry);
      }
    }
    this.viewer.scene.requestRender();
  }

  /**
   * Put the entry's canvas into its texture: in place when the size is unchanged, else into a
   * new texture that replaces the old one before the next frame (JavaScript runs between
   * frames, so no frame ever sees a texture missing or destroyed).
   */
  upload(entry) {
    const { canvas } = entry;
    const texture = entry.texture;
    if (texture && texture.width === canvas.width && texture.height === canvas.height) {
      texture.copyFrom({ source: canvas });
      return;
    }
    entry.texture = new Cesium.Texture({
      context: this.viewer.scene.context,
      source: canvas,
    });
    if (texture) texture.destroy();
  }

  /** The camera moved: project with its new model (no-op when it is not projected). */
  move(record) {
    const entry = this.stages.get(record.id);
    if (!entry) return;
    entry.record = record;
    entry.w2c = worldToCamera(record);
    entry.position = cameraPosition(record);
    this.viewer.scene.requestRender();
  }

  /** The camera's canvas holds a new frame: upload it again. */
  refresh(cameraId) {
    const entry = this.stages.get(cameraId);
    if (!entry) return;
    this.upload(entry);
    this.viewer.scene.requestRender();
  }

  /** Stop projecting `cameraId`'s frame. */
  hide(cameraId) {
    const entry = this.stages.get(cameraId);
    if (!entry) return;
    this.viewer.scene.postProcessStages.remove(entry.stage);
    if (entry.texture) entry.texture.destroy();
    this.stages.delete(cameraId);
    this.viewer.scene.requestRender();
  }

  /** Stop projecting every frame (the render guard's last resort). */
  hideAll() {
    for (const id of this.ids) this.hide(id);
  }
}
